# media sources and unit tests
