# webadmin sources and unit tests
libparley_a_SOURCES += webadmin/webadmin.h webadmin/status.c
