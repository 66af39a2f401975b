# plugins/dummy: Woodpecker's test backend, in C.
