# webadmin sources and unit tests
