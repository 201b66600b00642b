// S10's Motia peer. No plugins: without a config file `motia start` writes the default one, whose Workbench
// plugins it then npm-installs at start (nothing may be installed at bench run time). Redis: the machine's,
// through MOTIA_REDIS_HOST/PORT/DB set by bench/motia.py, not redis-memory-server (which fetches Redis).
module.exports = { plugins: [], redis: { useMemoryServer: false } }
