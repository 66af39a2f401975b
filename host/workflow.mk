# workflow part of the host (sources and their tests)
