/**
 * zod, as every module of tsrun takes it: configured once, before any schema is made.
 *
 * `jitless`: zod compiles a parser for each object schema the first time it parses one (a
 * `new Function` over generated source), which pays off across thousands of parses in a long
 * process. A tsrun command parses a handful of documents (a manifest, a config, a registry's
 * answer) and pays the compile for each shape: ~8 ms of a pull that finds the image up to date
 * (docs/benchmarks.md, "A pull with nothing to fetch"). Jitless zod gives the same results by
 * its generic path. A schema reads the setting when it is made, hence this module.
 */
import { z } from 'zod';

z.config({ jitless: true });

export { z };
