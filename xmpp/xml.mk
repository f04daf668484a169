# XML streams, element trees, serializer and JIDs
libparley_a_SOURCES += xmpp/xml.h xmpp/xml_stream.c xmpp/xml_tree.c \
	xmpp/jid.h xmpp/jid.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_xml test/unit/test_jid
TESTS += test/unit/test_xml test/unit/test_jid
test_unit_test_xml_SOURCES = test/unit/test_xml.c
test_unit_test_xml_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_xml_LDADD = $(UNIT_LIBS)
test_unit_test_jid_SOURCES = test/unit/test_jid.c
test_unit_test_jid_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_jid_LDADD = $(UNIT_LIBS)
endif
