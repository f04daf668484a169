# xmpp sources and unit tests
