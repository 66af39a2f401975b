# plugins/local: runs steps as host processes.
