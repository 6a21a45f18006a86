// Loaded into every test process after tap's own preloads (.taprc node-arg). tap's process-info
// preload turns source maps on, and Node then reads and parses the map of every dependency that
// ships one as it loads: half a CPU-second of a test process that loads the app. Type stripping
// keeps the lines and columns of the tests and the app, so their stack traces and coverage are
// the same without them; only frames inside dependencies point at their built files.
process.setSourceMapsEnabled(false)
