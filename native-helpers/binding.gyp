{
  "targets": [
    {
      "target_name": "tsrun_native",
      "sources": ["src/native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
