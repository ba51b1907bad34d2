package shard

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// The bucket is the API server's hash of the UID: an App is in bucket b exactly when the server's shard selector
// of b's set matches it. This is the same arithmetic as the API server's (k8s.io/apimachinery/pkg/sharding);
// test/integration asks a real one.
func TestBucketIsTheAPIServersHash(t *testing.T) {
	for range 2000 {
		uid := uuid.NewUUID()
		b := BucketOf(uid)
		hash, err := strconv.ParseUint(sharding.HashField(string(uid)), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(hash >> 56); got != b {
			t.Fatalf("BucketOf(%s) = %d, the API server's hash says %d", uid, b, got)
		}
		obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{UID: uid}}
		for _, set := range []Set{SetOf(b), SetOf(b, (b+1)%Buckets), SetOf((b + 1) % Buckets), All()} {
			if matches := matchesServer(t, set, obj); matches != set.Has(b) {
				t.Fatalf("bucket %d, set %s: the shard selector matches: %v", b, set, matches)
			}
		}
	}
}

// matchesServer evaluates set's ServerSelector as the API server does.
func matchesServer(t *testing.T, set Set, obj *metav1.PartialObjectMetadata) bool {
	t.Helper()
	var reqs []sharding.ShardRangeRequirement
	for _, r := range set.Ranges() {
		reqs = append(reqs, sharding.ShardRangeRequirement{Key: "object.metadata.uid",
			Start: hashBound(r[0]), End: hashBound(r[1] + 1)})
	}
	matches, err := sharding.NewSelector(reqs...).Matches(obj)
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func TestSetEncodings(t *testing.T) {
	for _, tc := range []struct {
		set           Set
		str, selector string
	}{
		{SetOf(), "", ""},
		{SetOf(0), "0", "shardRange(object.metadata.uid, '0x0000000000000000', '0x0100000000000000')"},
		{SetOf(1, 2, 3, 9, 255), "1-3,9,255", "shardRange(object.metadata.uid, '0x0100000000000000', '0x0400000000000000') || " +
			"shardRange(object.metadata.uid, '0x0900000000000000', '0x0a00000000000000') || " +
			"shardRange(object.metadata.uid, '0xff00000000000000', '0x10000000000000000')"},
		{All(), "0-255", "shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')"},
	} {
		if got := tc.set.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
		parsed, err := ParseSet(tc.str)
		if err != nil || parsed != tc.set {
			t.Errorf("ParseSet(%q) = %v, %v", tc.str, parsed.Buckets(), err)
		}
		selector, ok := tc.set.ServerSelector()
		if selector != tc.selector || ok != (tc.set.Len() > 0) {
			t.Errorf("ServerSelector() of %s = %q, %v, want %q", tc.str, selector, ok, tc.selector)
		}
	}
	if got, ok := SetOf(3, 1).LabelSelector(); got != "berth.dev/shard in (1,3)" || !ok {
		t.Errorf("LabelSelector() = %q, %v", got, ok)
	}
	if _, ok := SetOf().LabelSelector(); ok {
		t.Error("the empty set has a label selector")
	}
	for _, bad := range []string{"256", "-1", "3-1", "a", "1,", "1-2-3"} {
		if _, err := ParseSet(bad); err == nil {
			t.Errorf("ParseSet(%q) did not fail", bad)
		}
	}
	for _, bad := range []string{"256", "-1", "01", "", "x"} {
		if _, ok := ParseLabelValue(bad); ok {
			t.Errorf("ParseLabelValue(%q) is a bucket", bad)
		}
	}
}

func members(n int) []string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = fmt.Sprintf("berth-7d9f8c6b5-%05d_%s", i, types.UID(fmt.Sprintf("%08x", i*7919)))
	}
	return ms
}

func countOwned(owners [Buckets]string) map[string]int {
	counts := map[string]int{}
	for _, o := range owners {
		counts[o]++
	}
	return counts
}

// Each member holds its share of the buckets, give or take one, and every member builds the same ring.
func TestRingIsBalancedAndTheSameForEveryMember(t *testing.T) {
	for n := 1; n <= 12; n++ {
		ms := members(n)
		owners := NewRing(ms).Owners()
		counts := countOwned(owners)
		if counts[""] != 0 {
			t.Fatalf("%d members: %d buckets without an owner", n, counts[""])
		}
		for _, m := range ms {
			if share := Buckets / n; counts[m] < share-1 || counts[m] > share+1 {
				t.Errorf("%d members: %s holds %d buckets, its share is %d", n, m, counts[m], share)
			}
		}
		reversed := make([]string, n)
		for i, m := range ms {
			reversed[n-1-i] = m
		}
		if NewRing(reversed).Owners() != owners {
			t.Errorf("%d members: the order of the members changes the ring", n)
		}
	}
	if NewRing(nil).Owners() != [Buckets]string{} {
		t.Error("a ring without members gives buckets")
	}
}

// A member that comes or goes moves about its share of the buckets, not all of them.
func TestRingMovesLittle(t *testing.T) {
	for n := 2; n <= 8; n++ {
		ms := members(n + 1)
		before, after := NewRing(ms[:n]).Owners(), NewRing(ms).Owners()
		moved := 0
		for b := range Buckets {
			if before[b] != after[b] {
				moved++
			}
		}
		// The newcomer's share moves to it; the bounded load moves a few more between the others.
		if share := Buckets / (n + 1); moved > share+share/2 {
			t.Errorf("%d members to %d: %d buckets moved, the newcomer's share is %d", n, n+1, moved, share)
		}
	}
}

func TestTableEncoding(t *testing.T) {
	table := Table{Generation: 7}
	ms := members(3)
	for b := range Buckets {
		if b%5 != 0 {
			table.Owners[b] = ms[b%3]
		}
	}
	decoded, err := DecodeTable("7", table.EncodeOwners())
	if err != nil || decoded != table {
		t.Fatalf("DecodeTable(EncodeOwners()) = %v, %v", decoded.EncodeOwners(), err)
	}
	for _, bad := range [][2]string{{"x", ""}, {"-1", ""}, {"1", "a=1;b=1"}, {"1", "=1"}, {"1", "a"}, {"1", "a=300"}} {
		if _, err := DecodeTable(bad[0], bad[1]); err == nil {
			t.Errorf("DecodeTable(%q, %q) did not fail", bad[0], bad[1])
		}
	}
}

// converge runs the assigner's steps with every member applying each table at once, and returns the table it
// comes to and how many steps it took.
func converge(t *testing.T, table Table, names []string) (Table, int) {
	t.Helper()
	for steps := 0; steps < 10; steps++ {
		live := make([]Member, len(names))
		for i, n := range names {
			live[i] = Member{Name: n, Applied: table.Generation}
		}
		next, changed := Next(table, live)
		if !changed {
			return table, steps
		}
		table = next
	}
	t.Fatal("the assignment did not settle in 10 steps")
	return table, 0
}

func TestNextComesToTheRing(t *testing.T) {
	ms := members(4)
	table, steps := converge(t, Table{}, ms[:3])
	if table.Owners != NewRing(ms[:3]).Owners() || steps != 1 {
		t.Fatalf("from nothing: %d steps to %s", steps, table.EncodeOwners())
	}
	// A newcomer: its buckets are taken from their owners, then given to it.
	table, steps = converge(t, table, ms)
	if table.Owners != NewRing(ms).Owners() || steps != 2 {
		t.Fatalf("a member added: %d steps", steps)
	}
	// A member gone: its buckets are taken from it, then given to the others.
	table, steps = converge(t, table, ms[1:])
	if table.Owners != NewRing(ms[1:]).Owners() || steps != 2 {
		t.Fatalf("a member gone: %d steps", steps)
	}
	if table.Of(ms[0]).Len() != 0 {
		t.Fatal("the member that is gone still owns buckets")
	}
	// No member: nothing is owned, and nothing more changes.
	table, _ = converge(t, table, nil)
	if table.Unassigned() != All() {
		t.Fatal("buckets owned with no member")
	}
}

// A bucket is given only once every live member has applied the table that took it: a member that lags holds
// the step back.
func TestNextWaitsForEveryMemberToApply(t *testing.T) {
	ms := members(3)
	table, _ := converge(t, Table{}, ms[:2])
	taken, changed := Next(table, []Member{{ms[0], table.Generation}, {ms[1], table.Generation}, {ms[2], 0}})
	if !changed || taken.Unassigned().Len() == 0 {
		t.Fatal("the newcomer's buckets were not taken from their owners")
	}
	lagging := []Member{{ms[0], taken.Generation}, {ms[1], taken.Generation - 1}, {ms[2], taken.Generation}}
	if _, changed := Next(taken, lagging); changed {
		t.Fatal("buckets were given while a member had not applied the table that took them")
	}
}

// The property the protocol exists for, over random runs: members join, leave and die, apply tables late and in
// bursts, and the assigner steps when it likes; at no moment do two members' applied tables give one bucket to
// both. A member writes a bucket's Apps only while the table it last applied gives it the bucket, and a dead
// member (Lease expired) has stopped.
func TestNoTwoMembersEverOwnABucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := members(6)
	for run := range 100 {
		var history []Table
		table := Table{}
		history = append(history, table)
		applied := map[string]int64{} // live members and the generation each has applied
		for step := 0; step < 200; step++ {
			switch r := rng.IntN(10); {
			case r == 0: // a member joins, with nothing applied
				applied[names[rng.IntN(len(names))]] += 0
			case r == 1: // a member dies or leaves: it has stopped writing
				for m := range applied {
					delete(applied, m)
					break
				}
			case r < 6: // a member applies the latest table
				for m := range applied {
					if rng.IntN(2) == 0 {
						applied[m] = table.Generation
					}
				}
			default: // the assigner steps
				live := make([]Member, 0, len(applied))
				for m, g := range applied {
					live = append(live, Member{m, g})
				}
				if next, changed := Next(table, live); changed {
					table = next
					history = append(history, table)
				}
			}
			owner := map[int]string{}
			for m, g := range applied {
				for _, b := range history[g].Of(m).Buckets() {
					if other, ok := owner[b]; ok {
						t.Fatalf("run %d, step %d: bucket %d owned by %s and %s", run, step, b, other, m)
					}
					owner[b] = m
				}
			}
		}
	}
}
