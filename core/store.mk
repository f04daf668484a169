# core: storage, users, SCRAM, commands, control socket
libparley_a_SOURCES += \
	core/store.h core/store.c core/users.h core/users.c \
	core/scram.h core/scram.c core/cmd.h core/cmd.c core/ctl.h core/ctl.c
