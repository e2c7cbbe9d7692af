{
  "targets": [
    {
      "target_name": "tsrun_native",
      "sources": ["src/native.c", "src/at.c", "src/walk.c", "src/spawn.c", "src/fingerprint.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "tsrun_source",
      "sources": ["src/source.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "tsrun-monitor",
      "type": "executable",
      "sources": ["src/monitor.c", "src/launch.c", "src/health.c", "src/ports.c", "src/ready.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "tsrun-rootns",
      "type": "executable",
      "sources": ["src/rootns.c", "src/walk.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
