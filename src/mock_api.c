/* mock_api.c - placeholder until its module lands. */
int cmd_mock_api(int argc, char **argv);
int cmd_mock_api(int argc, char **argv) { (void)argc; (void)argv; return 1; }
