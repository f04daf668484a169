# the daemon and the tools
bin_PROGRAMS += parleyd parleyctl
parleyd_SOURCES = server/main.c server/builtin.c server/builtin.h
parleyd_LDADD = $(PL_LIBS)
parleyctl_SOURCES = tools/parleyctl.c
parleyctl_LDADD =
EXTRA_DIST += tools/install-deps tools/quickstart tools/test conf/parley.yml
