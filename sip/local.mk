# sip sources and unit tests
