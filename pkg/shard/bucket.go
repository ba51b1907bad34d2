package shard

import (
	"fmt"
	"hash/fnv"
	"math/bits"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Buckets is the number of buckets the Apps fall in. It is part of what berth writes (the values of Label), so
// it never changes; it bounds how finely the Apps can be split (a member owns whole buckets), and each member's
// label selector names its buckets one by one.
const Buckets = 256

// bucketShift keeps the top 8 bits of the 64-bit hash: the bucket is a contiguous range of the hash.
const bucketShift = 64 - 8

// Label is the label that carries an App's bucket, on the App and on every object berth makes for it (the
// Deployment's Pods included), so that a member's informers can select its buckets' objects.
const Label = "berth.dev/shard"

// BucketOf is the bucket of the App whose UID is uid: the top bits of the FNV-1a hash of the UID, which is what
// the API server hashes for shardRange(object.metadata.uid, ...).
func BucketOf(uid types.UID) int {
	h := fnv.New64a()
	h.Write([]byte(uid))
	return int(h.Sum64() >> bucketShift)
}

// LabelValue is the value of Label for bucket b.
func LabelValue(b int) string { return strconv.Itoa(b) }

// ParseLabelValue reads a value of Label; ok is false when it names no bucket.
func ParseLabelValue(s string) (b int, ok bool) {
	b, err := strconv.Atoi(s)
	if err != nil || b < 0 || b >= Buckets || strconv.Itoa(b) != s {
		return 0, false
	}
	return b, true
}

// Set is a set of buckets.
type Set [Buckets / 64]uint64

// SetOf is the set of buckets bs.
func SetOf(bs ...int) Set {
	var s Set
	for _, b := range bs {
		s.Add(b)
	}
	return s
}

// All is the set of every bucket.
func All() Set {
	var s Set
	for i := range s {
		s[i] = ^uint64(0)
	}
	return s
}

// Add adds bucket b.
func (s *Set) Add(b int) { s[b/64] |= 1 << (b % 64) }

// Has tells whether b is in the set.
func (s Set) Has(b int) bool { return s[b/64]&(1<<(b%64)) != 0 }

// Len is the number of buckets in the set.
func (s Set) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// Buckets are the set's buckets, in order.
func (s Set) Buckets() []int {
	bs := make([]int, 0, s.Len())
	for b := range Buckets {
		if s.Has(b) {
			bs = append(bs, b)
		}
	}
	return bs
}

// Ranges are the set's runs of consecutive buckets, as [first, last] pairs.
func (s Set) Ranges() [][2]int {
	var ranges [][2]int
	for b := 0; b < Buckets; b++ {
		if !s.Has(b) {
			continue
		}
		first := b
		for b+1 < Buckets && s.Has(b+1) {
			b++
		}
		ranges = append(ranges, [2]int{first, b})
	}
	return ranges
}

// String writes the set as its ranges, "0-17,40,52-60", as Table's encoding does; "" is the empty set.
func (s Set) String() string {
	parts := make([]string, 0, 8)
	for _, r := range s.Ranges() {
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0]))
			continue
		}
		parts = append(parts, strconv.Itoa(r[0])+"-"+strconv.Itoa(r[1]))
	}
	return strings.Join(parts, ",")
}

// ParseSet reads what String wrote.
func ParseSet(str string) (Set, error) {
	var s Set
	if str == "" {
		return s, nil
	}
	for _, part := range strings.Split(str, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.Atoi(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || first < 0 || last < first || last >= Buckets {
			return Set{}, fmt.Errorf("%q is not a bucket or a range of buckets below %d", part, Buckets)
		}
		for b := first; b <= last; b++ {
			s.Add(b)
		}
	}
	return s, nil
}

// LabelSelector selects the objects of the set's buckets by Label: "berth.dev/shard in (0,1,7)". ok is false
// for the empty set, which no selector expresses: a member without buckets watches nothing.
func (s Set) LabelSelector() (selector string, ok bool) {
	values := make([]string, 0, s.Len())
	for _, b := range s.Buckets() {
		values = append(values, LabelValue(b))
	}
	return Label + " in (" + strings.Join(values, ",") + ")", len(values) > 0
}

// ServerSelector is the shard selector (metav1.ListOptions.ShardSelector) of the Apps of the set's buckets: one
// shardRange over object.metadata.uid per run of buckets. ok is false for the empty set, which no selector
// expresses.
func (s Set) ServerSelector() (selector string, ok bool) {
	ranges := s.Ranges()
	parts := make([]string, 0, len(ranges))
	for _, r := range ranges {
		parts = append(parts, fmt.Sprintf("shardRange(object.metadata.uid, '%s', '%s')",
			hashBound(r[0]), hashBound(r[1]+1)))
	}
	return strings.Join(parts, " || "), len(parts) > 0
}

// hashBound is the first hash of bucket b, as the API server writes a bound: 16 hex digits, or 2^64 past the
// last bucket.
func hashBound(b int) string {
	if b == Buckets {
		return "0x10000000000000000"
	}
	return fmt.Sprintf("0x%016x", uint64(b)<<bucketShift)
}
