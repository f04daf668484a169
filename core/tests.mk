# unit tests of the reactor, shards, connections and config
