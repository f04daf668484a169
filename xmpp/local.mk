include xmpp/xml.mk
# xmpp sources and unit tests
# streams, sessions and routing
libparley_a_SOURCES += xmpp/xmpp.h xmpp/c2s.c xmpp/sm.h xmpp/sm.c xmpp/router.c \
	xmpp/admin.c xmpp/events.h xmpp/iq.h xmpp/iq.c xmpp/disco.h xmpp/disco.c \
	xmpp/ping.c
include xmpp/modules.mk
include xmpp/roster.mk
