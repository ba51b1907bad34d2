package shard

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
)

// virtualNodes is how many points each member has on the ring: enough that a member that comes or goes moves
// buckets from, or to, every other member rather than from one neighbour.
const virtualNodes = 100

// Ring is a consistent hash ring of members with virtual nodes, bounded in load: each bucket goes to the first
// member clockwise from the bucket's place that has not taken its share of the buckets yet (Buckets/members, or
// one more for the first Buckets%members members to fill their share). A member that comes or goes moves about its share of the buckets and few others, and no
// member holds more than its share, however the points fall.
type Ring struct {
	points []point
	// members are the ring's members, sorted.
	members []string
}

type point struct {
	hash   uint64
	member string
}

// NewRing is the ring of members; their order does not matter, and duplicates count once.
func NewRing(members []string) Ring {
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	r := Ring{members: members, points: make([]point, 0, len(members)*virtualNodes)}
	for _, m := range members {
		for i := range virtualNodes {
			r.points = append(r.points, point{hash: mix(hashString(m + "#" + strconv.Itoa(i))), member: m})
		}
	}
	slices.SortFunc(r.points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		// Two members' points on the same hash: the name decides, so that every member builds the same ring.
		return cmp.Compare(a.member, b.member)
	})
	return r
}

// Members are the ring's members, sorted.
func (r Ring) Members() []string { return r.members }

// Owners gives every bucket its member: owners[b] is the owner of bucket b, "" when the ring has no member.
func (r Ring) Owners() [Buckets]string {
	var owners [Buckets]string
	if len(r.members) == 0 {
		return owners
	}
	// Each member takes share buckets, and the first extra members to come to a bucket with a full share take
	// one more: the counts add up to Buckets.
	share, extra := Buckets/len(r.members), Buckets%len(r.members)
	load := make(map[string]int, len(r.members))
	for b := range Buckets {
		// The bucket's place on the ring: the middle of its range of the hash.
		place := uint64(b)<<bucketShift | 1<<(bucketShift-1)
		i, _ := slices.BinarySearchFunc(r.points, place, func(p point, h uint64) int {
			switch {
			case p.hash < h:
				return -1
			case p.hash > h:
				return 1
			}
			return 0
		})
		for n := 0; ; n++ {
			p := r.points[(i+n)%len(r.points)]
			if l := load[p.member]; l < share || l == share && extra > 0 {
				if l == share {
					extra--
				}
				owners[b] = p.member
				load[p.member]++
				break
			}
		}
	}
	return owners
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix spreads the bits of FNV-1a's hash of the members' points (splitmix64's finalizer): names that differ only
// in their last characters, as "berth-7d9f-abc#1" and "#2" do, would otherwise fall close together.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
