# core: the shared HTTP/WebSocket listener (libwebsockets on the reactor)
libparley_a_SOURCES += core/http.h core/http_int.h core/http.c core/http_shard.c \
	core/http_echo.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_http
TESTS += test/unit/test_http
test_unit_test_http_SOURCES = test/unit/test_http.c
test_unit_test_http_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_http_LDADD = $(UNIT_LIBS)
endif
