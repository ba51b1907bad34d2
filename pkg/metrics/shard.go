package metrics

import "k8s.io/component-base/metrics"

// Shard reports how the Apps are shared between berth's replicas (--sharding): each member its buckets, and the
// replica that leads (the assigner) the live members and the buckets that no member owns.
type Shard struct {
	buckets    *metrics.Gauge
	members    *metrics.Gauge
	unassigned *metrics.Gauge
}

// NewShard creates the sharding metrics and registers them with register.
func NewShard(register func(...metrics.Registerable)) *Shard {
	s := &Shard{
		buckets: metrics.NewGauge(&metrics.GaugeOpts{
			Subsystem:      subsystem,
			Name:           "shard_buckets",
			Help:           "Buckets of Apps (of 256) that this replica owns and syncs, with --sharding; 0 without.",
			StabilityLevel: metrics.ALPHA,
		}),
		members: metrics.NewGauge(&metrics.GaugeOpts{
			Subsystem:      subsystem,
			Name:           "shard_members",
			Help:           "Live members that the replica that leads shares the Apps between, with --sharding; 0 on the others.",
			StabilityLevel: metrics.ALPHA,
		}),
		unassigned: metrics.NewGauge(&metrics.GaugeOpts{
			Subsystem:      subsystem,
			Name:           "shard_unassigned_buckets",
			Help:           "Buckets of Apps that no member owns, as the replica that leads sees them, with --sharding: their Apps are not synced. 0 on the others.",
			StabilityLevel: metrics.ALPHA,
		}),
	}
	register(s.buckets, s.members, s.unassigned)
	return s
}

// SetBuckets records how many buckets this member owns.
func (s *Shard) SetBuckets(n int) { s.buckets.Set(float64(n)) }

// SetMembers records how many members are live.
func (s *Shard) SetMembers(n int) { s.members.Set(float64(n)) }

// SetUnassigned records how many buckets no member owns.
func (s *Shard) SetUnassigned(n int) { s.unassigned.Set(float64(n)) }
