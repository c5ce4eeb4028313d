"""The `fusionserve` command: one entry point over training, export, verify, serve and bench."""
