{
  "targets": [
    {
      "target_name": "tsrun_native",
      "sources": ["src/native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "tsrun-monitor",
      "type": "executable",
      "sources": ["src/monitor.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
