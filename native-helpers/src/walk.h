/* walk.c: resolve a path inside a directory fd as if it were "/" (see walk.c). */
#ifndef TSRUN_WALK_H
#define TSRUN_WALK_H
int walk_in_root(int rootfd, const char *path, int follow_final);
#endif
