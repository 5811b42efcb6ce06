# fish completion for meshkv(1). Written by hand and kept beside the code: when
# a subcommand or option changes in cli/, change it here, in meshkv.bash,
# _meshkv and man/meshkv.1 (tests/proc_docs.sh checks that they agree).
# Installed as share/fish/vendor_completions.d/meshkv.fish.
#
# One line per option and subcommand, the subcommands named literally in the
# condition, so that a reader (and the test) can see what each one takes.

complete -c meshkv -f

# Subcommands, offered until one is given.
set -l meshkv_subcommands node get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget loss watch diff trace keys quarantine keygen sim cluster top
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -s h -l help -d 'print help and exit'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -l version -d 'print version and exit'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a node -d 'start a mesh node with an interactive prompt (the default)'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a get -d 'read a key from a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a set -d 'write a key through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a del -d 'delete a key through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a expire -d "make a key's value expire after a time to live"
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a ttl -d 'show the time a key has left before it expires'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a incr -d 'add to a counter through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a decr -d 'subtract from a counter through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a sadd -d 'add members to a set (add-wins) through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a srem -d 'remove members from a set through a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a smembers -d 'list the members of a set on a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a sismember -d 'tell whether a member is in a set on a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a list -d 'list keys (optionally under a prefix) of a running node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a status -d "show a node's members, counters and version vector"
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a peers -d "show a node's members with state, RTT and last contact"
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a clock -d 'print version vectors of one or more nodes'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a join -d 'make a running node contact peers and merge memberships'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a forget -d 'remove a dead or suspect member now, on every node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a loss -d 'inject loss, duplication, delay or partitions into a node'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a watch -d 'stream changes as a node applies them'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a diff -d 'compare the states of two nodes'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a trace -d 'write a key and report when each member acknowledged it'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a keys -d "list, install, switch or remove a node's cluster keys at runtime"
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a quarantine -d 'list, apply or drop writes kept aside by tombstone collection'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a keygen -d 'create a cluster key or a node identity'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a sim -d 'run the deterministic network simulator'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a cluster -d 'start, inspect, partition and stop a local cluster of nodes'
complete -c meshkv -n "not __fish_seen_subcommand_from $meshkv_subcommands" -a top -d "a live view of a node's mesh: members, lag, traffic"

# --help after any subcommand.
complete -c meshkv -n "__fish_seen_subcommand_from $meshkv_subcommands" -s h -l help -d 'print help and exit'

# node
complete -c meshkv -n '__fish_seen_subcommand_from node' -l config -r -F -d 'read settings from a TOML file'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l id -x -d 'node name'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l listen -x -d 'UDP mesh and TCP control address, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l join -x -d 'contact this member at start (repeatable)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l mtu -x -d 'largest datagram, bytes'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l gossip-interval -x -d 'membership gossip period, ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l probe-interval -x -d 'failure-detector probe period, ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l probe-timeout -x -d 'direct probe timeout, ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l anti-entropy-interval -x -d 'anti-entropy period, ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l loss -x -d 'drop this share (0..1) of sent datagrams'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l data-dir -x -a '(__fish_complete_directories)' -d 'keep state in DIR (write-ahead log and snapshots)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l sync -x -a 'always interval' -d 'when the log reaches the disk (default always)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l sync-interval -x -d 'sync period for --sync interval, ms (default 50)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l tombstone-grace -x -d 'keep tombstones this long once every member has them, ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l reap-after -x -d 'remove a member dead or left this long, ms (at least --tombstone-grace)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l repair -d 'start even if the log or snapshot is damaged; peers resend the rest'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l log-level -x -a 'debug info warn error' -d 'log threshold'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l log-format -x -a 'text json' -d 'log lines as text or one JSON object each'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l no-history -d 'keep no prompt history in ~/.meshkv_history'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l insecure -d 'allow a non-loopback --listen without a cluster key'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l metrics -x -d 'serve Prometheus metrics at http://HOST:PORT/metrics'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l max-clock-offset -x -d 'refuse writes while this many ms from most peer clocks (0: off)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l clock-offset-ms -x -d 'for testing: skew the wall clock by this many ms'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l key-file -r -F -d 'seal the mesh with this cluster key (repeatable: the first seals)'
complete -c meshkv -n '__fish_seen_subcommand_from node' -l identity -r -F -d "this node's identity key pair (meshkv keygen)"
complete -c meshkv -n '__fish_seen_subcommand_from node' -l allow-peer -x -d 'accept only members with this public key, mkpub:... (repeatable)'

# Every subcommand that talks to a node presents the cluster key of a sealed mesh.
complete -c meshkv -n '__fish_seen_subcommand_from get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget loss watch diff trace keys quarantine' -l key-file -r -F -d 'cluster key of a sealed mesh (default $MESHKV_KEY_FILE)'

# The remote subcommands: get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget.
complete -c meshkv -n '__fish_seen_subcommand_from get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget' -l node -x -a '(set -q MESHKV_NODE; and echo $MESHKV_NODE; or echo 127.0.0.1:7946)' -d 'node to ask, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget' -l timeout -x -d 'give up after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget' -l json -d 'print the answer as JSON'

complete -c meshkv -n '__fish_seen_subcommand_from set' -l batch -r -F -d "write many keys: lines of KEY VALUE from FILE ('-' for stdin)"
complete -c meshkv -n '__fish_seen_subcommand_from set' -l value-file -r -F -d "read the value from FILE, byte for byte"
complete -c meshkv -n '__fish_seen_subcommand_from set' -l ttl -x -d 'the value expires this long after the write (500ms, 2s, 1h)'
complete -c meshkv -n '__fish_seen_subcommand_from del' -l batch -r -F -d "delete many keys: one KEY per line of FILE ('-' for stdin)"
complete -c meshkv -n '__fish_seen_subcommand_from del' -l force -d 'write a tombstone even if the node holds no value for the key'
complete -c meshkv -n '__fish_seen_subcommand_from set del expire incr decr sadd srem' -l wait -x -a '1 2 3 quorum all' -d 'return once this many members have the write (a durability wait, not a transaction)'
complete -c meshkv -n '__fish_seen_subcommand_from get list' -l read -x -a 'quorum all' -d 'ask a quorum (or all) of the members; repairs those behind'
complete -c meshkv -n '__fish_seen_subcommand_from get' -l max-staleness -x -d 'refuse a local answer staler than this, ms'

# loss
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l node -x -d 'node to change, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l drop -x -d 'share of datagrams dropped, 0..1'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l dup -x -d 'share of datagrams sent twice, 0..1'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l corrupt -x -d 'share of datagrams with one bit flipped, 0..1'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l delay -x -d 'added latency, MS[:JITTER]'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l peer -x -d 'apply only to traffic with this member (repeatable)'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l partition -x -d 'drop everything to and from these members, ID,...'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l direction -x -a 'out in both' -d 'datagrams the faults apply to'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l clear -d 'remove every fault'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l timeout -x -d 'give up after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from loss' -l json -d 'print the active faults as JSON'

# watch
complete -c meshkv -n '__fish_seen_subcommand_from watch' -l node -x -d 'node to watch, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from watch' -l prefix -x -d 'only keys starting with this'
complete -c meshkv -n '__fish_seen_subcommand_from watch' -l timeout -x -d 'give up connecting after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from watch' -l json -d 'one JSON object per line'

# diff A B
complete -c meshkv -n '__fish_seen_subcommand_from diff' -l json -d 'print the differences as JSON'
complete -c meshkv -n '__fish_seen_subcommand_from diff' -l timeout -x -d 'give up after this long, ms'

# trace KEY VALUE
complete -c meshkv -n '__fish_seen_subcommand_from trace' -l node -x -d 'node to write through, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from trace' -l json -d 'print the report as JSON'
complete -c meshkv -n '__fish_seen_subcommand_from trace' -l timeout -x -d 'wait this long for acknowledgements, ms (default 2000)'

# keys [list|install|use|remove] [KEY_FILE]
complete -c meshkv -n '__fish_seen_subcommand_from keys' -l node -x -d 'node to change, HOST:PORT (repeatable)'
complete -c meshkv -n '__fish_seen_subcommand_from keys' -l timeout -x -d 'give up on a node after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from keys' -l json -d 'print each answer as JSON'
complete -c meshkv -n '__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from list install use remove' -a list -d 'show the keys (default)'
complete -c meshkv -n '__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from list install use remove' -a install -d 'add a key that opens datagrams'
complete -c meshkv -n '__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from list install use remove' -a use -d 'seal with an installed key'
complete -c meshkv -n '__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from list install use remove' -a remove -d 'forget a key'
complete -c meshkv -n '__fish_seen_subcommand_from keys; and __fish_seen_subcommand_from install use remove' -F

complete -c meshkv -n '__fish_seen_subcommand_from peers' -l state -x -a 'alive suspect dead left' -d 'only the members in this state'
# quarantine [list [PREFIX]|apply KEY|drop KEY|drop --all]
complete -c meshkv -n '__fish_seen_subcommand_from quarantine' -l node -x -d 'node to ask, HOST:PORT (repeatable)'
complete -c meshkv -n '__fish_seen_subcommand_from quarantine' -l timeout -x -d 'give up after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from quarantine' -l json -d "print the node's answer as JSON"
complete -c meshkv -n '__fish_seen_subcommand_from quarantine' -l all -d 'drop every quarantined write'
complete -c meshkv -n '__fish_seen_subcommand_from quarantine' -l limit -x -d 'list at most this many (default 1000)'
complete -c meshkv -n '__fish_seen_subcommand_from quarantine; and not __fish_seen_subcommand_from list apply drop' -a list -d 'the writes kept aside (default)'
complete -c meshkv -n '__fish_seen_subcommand_from quarantine; and not __fish_seen_subcommand_from list apply drop' -a apply -d "make a key's newest one its value again"
complete -c meshkv -n '__fish_seen_subcommand_from quarantine; and not __fish_seen_subcommand_from list apply drop' -a drop -d "discard a key's (or --all)"

# status
complete -c meshkv -n '__fish_seen_subcommand_from status' -l check -d 'one line and exit 0 when ready, 1 when not'

# keygen
complete -c meshkv -n '__fish_seen_subcommand_from keygen' -l cluster -d 'create a cluster key instead of a node identity'
complete -c meshkv -n '__fish_seen_subcommand_from keygen' -s o -l out -r -F -d 'file to create (default meshkv.identity or meshkv.key)'
complete -c meshkv -n '__fish_seen_subcommand_from keygen' -l force -d 'replace an existing file (the old key is lost)'

# sim
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l nodes -x -d 'simulated nodes (default 5)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l loss -x -d 'share of datagrams lost, 0..0.95 (default 0.1)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l dup -x -d 'share of datagrams duplicated, 0..1 (default 0.01)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l delay -x -d 'one-way delay, ms (default 1)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l jitter -x -d 'extra uniform delay, reorders, ms (default 2)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l partition-at -x -d 'when the partition starts, s'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l heal-at -x -d 'when it heals, s'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l partition -x -d 'cut these nodes (from 0) off from the rest, N,...'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l writes -x -d 'writes spread over the run (default 200)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l seed -x -d 'random seed (default 1)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l duration -x -d 'give up converging after this long, s (default 60)'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l quiet -d 'print only the report'
complete -c meshkv -n '__fish_seen_subcommand_from sim' -l json -d 'print the report and timeline as JSON'

# cluster
complete -c meshkv -n '__fish_seen_subcommand_from cluster; and not __fish_seen_subcommand_from up status down partition heal kill restart' -a 'up status down partition heal kill restart' -d 'cluster action'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l dir -r -a '(__fish_complete_directories)' -d 'the working directory (default ./meshkv-cluster)'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l data-dir -d 'up: durable nodes, a data directory each'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l key -d 'up: generate a cluster key and seal the mesh'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l loss -x -d 'up: share of datagrams each node drops, 0..1'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l base-port -x -d 'up: first of N consecutive free ports'
complete -c meshkv -n '__fish_seen_subcommand_from cluster' -l wait -x -d 'how long to wait for the mesh to form, s (default 15)'

# top
complete -c meshkv -n '__fish_seen_subcommand_from top' -l node -x -a '(set -q MESHKV_NODE; and echo $MESHKV_NODE; or echo 127.0.0.1:7946)' -d 'node to watch, HOST:PORT'
complete -c meshkv -n '__fish_seen_subcommand_from top' -l once -d 'print one frame with every view and exit'
complete -c meshkv -n '__fish_seen_subcommand_from top' -l view -x -a 'members lag traffic' -d 'the view to start with'
complete -c meshkv -n '__fish_seen_subcommand_from top' -l interval -x -d 'refresh period, ms (default 1000)'
complete -c meshkv -n '__fish_seen_subcommand_from top' -l timeout -x -d 'give up on a request after this long, ms'
complete -c meshkv -n '__fish_seen_subcommand_from top' -l key-file -r -F -d 'cluster key of a sealed mesh (default $MESHKV_KEY_FILE)'
complete -c meshkv -n '__fish_seen_subcommand_from incr decr' -l repeat -x -d 'send the same request COUNT times, each a write of its own'
complete -c meshkv -n '__fish_seen_subcommand_from sadd srem' -l members-file -r -F -d 'read the members from FILE, one per line'
