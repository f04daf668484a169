# core: reactor, shards, connections, config, TLS
libparley_a_SOURCES += \
	core/pl.h core/pl.c core/log.h core/log.c core/buf.h core/buf.c \
	core/ev.h core/ev.c core/shard.h core/shard.c \
	core/conn.h core/conn.c core/listen.h core/listen.c \
	core/cfg.h core/cfg.c core/tls.h core/tls.c core/module.h core/module.c core/hook.h core/hook.c core/strtab.h core/strtab.c core/dlist.h
