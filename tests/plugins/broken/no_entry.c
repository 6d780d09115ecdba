/* tests/plugins/no_entry.c - a shared object without the ember_plugin symbol. */
__attribute__((visibility("default"))) int not_an_ember_plugin(void);
int not_an_ember_plugin(void) { return 42; }
