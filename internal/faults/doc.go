// Package faults is jobchat's fault suite: its tests run the real jobchat
// binary as two processes sharing PostgreSQL (through a fault proxy) and a
// private redis-server, drive them with retrying senders and resuming
// subscribers over real sockets, and break things on purpose: Redis
// restarted, PostgreSQL cut or partitioned, an instance stopped with
// SIGTERM, killed with SIGKILL, or paused with SIGSTOP. They check that no
// acknowledged message is lost, none is stored twice, every subscriber sees
// every message once in the one seq order, and that a subscriber on a
// healthy instance gets every committed message within 2 s of the fault
// being over, also in a conversation that stays quiet after it. Each run
// logs the stall after its fault (`stall fault=… median=… worst=…`).
//
// The package has no code of its own besides this comment: everything is
// in its tests (`go test ./internal/faults`; JOBCHAT_FAULT_ROUNDS=N repeats
// each fault N times, for measurement). They need PostgreSQL and Redis as
// every integration test does (internal/testsvc), and redis-server on PATH.
package faults
