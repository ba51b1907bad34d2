// Package shard splits the Apps between berth's replicas, as pure functions of their inputs: which bucket an App
// falls in, which member a ring of the live members gives each bucket, and how the table of the buckets' owners
// moves from one assignment to the next without two members ever owning a bucket at once.
//
// Every App falls in one of Buckets buckets, a fixed function of its UID (BucketOf): the same FNV-1a hash that the
// API server computes for a shard selector over object.metadata.uid, so that a bucket is both a label value
// (Label, set on the App and on everything berth makes for it) and a range of that hash (ServerSelector). An App
// never changes bucket, so a move of buckets between members relabels nothing.
//
// The table (Table) says which member owns each bucket. It is written by one member at a time, the holder of the
// leader-election Lease (the assigner), and read by all. Each member acknowledges, in a Lease of its own, the
// generation of the table it has applied: it applies one once it has stopped every sync of a bucket the table
// no longer gives it. A move is two steps (Next): the bucket is first taken from its owner, and only once every
// live member has acknowledged that table is it given to its new owner. A member whose Lease expired is no longer
// live: it stopped working at its renew deadline, before the expiry.
package shard
