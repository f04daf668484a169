# ice sources and unit tests
