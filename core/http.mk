# core: the shared HTTP/WebSocket listener (libwebsockets on the reactor)
libparley_a_SOURCES += core/http.h core/http.c
