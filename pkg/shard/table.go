package shard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Table says which member owns each bucket, at a generation that grows by one with every change.
type Table struct {
	Generation int64
	// Owners[b] is the member that owns bucket b; "" when no member does: the bucket's Apps wait.
	Owners [Buckets]string
}

// Of is the set of buckets member owns.
func (t Table) Of(member string) Set {
	var s Set
	for b, owner := range t.Owners {
		if owner == member && member != "" {
			s.Add(b)
		}
	}
	return s
}

// Unassigned is the set of buckets no member owns.
func (t Table) Unassigned() Set {
	var s Set
	for b, owner := range t.Owners {
		if owner == "" {
			s.Add(b)
		}
	}
	return s
}

// Members are the members that own a bucket, sorted.
func (t Table) Members() []string {
	var members []string
	for _, owner := range t.Owners {
		if owner != "" {
			members = append(members, owner)
		}
	}
	slices.Sort(members)
	return slices.Compact(members)
}

// EncodeOwners writes the owners as "member=ranges" pairs separated by ";", members sorted:
// "berth-a_1f3e=0-63,128;berth-b_77aa=64-127".
func (t Table) EncodeOwners() string {
	members := t.Members()
	parts := make([]string, 0, len(members))
	for _, m := range members {
		parts = append(parts, m+"="+t.Of(m).String())
	}
	return strings.Join(parts, ";")
}

// DecodeTable reads a table from its generation and what EncodeOwners wrote. A bucket named twice is an error:
// no reader may believe two members own it.
func DecodeTable(generation, owners string) (Table, error) {
	var t Table
	if generation != "" {
		g, err := strconv.ParseInt(generation, 10, 64)
		if err != nil || g < 0 {
			return Table{}, fmt.Errorf("generation %q is not a count", generation)
		}
		t.Generation = g
	}
	if owners == "" {
		return t, nil
	}
	for _, part := range strings.Split(owners, ";") {
		member, ranges, ok := strings.Cut(part, "=")
		if !ok || member == "" {
			return Table{}, fmt.Errorf("%q is not member=buckets", part)
		}
		set, err := ParseSet(ranges)
		if err != nil {
			return Table{}, fmt.Errorf("the buckets of %s: %w", member, err)
		}
		for _, b := range set.Buckets() {
			if t.Owners[b] != "" {
				return Table{}, fmt.Errorf("bucket %d is given to both %s and %s", b, t.Owners[b], member)
			}
			t.Owners[b] = member
		}
	}
	return t, nil
}

// Member is a live member as the assigner sees it: its Lease has not expired.
type Member struct {
	Name string
	// Applied is the generation of the table the member has applied: it writes no App of a bucket that this
	// generation does not give it.
	Applied int64
}

// Next is the assigner's step from table t with the live members: the table that follows, and whether it differs
// from t. Repeated, it reaches the table that the ring of the live members gives, in two kinds of step:
//   - a bucket whose owner is not live, or is not the ring's choice, is taken from it (its owner stops syncing
//     its Apps when it applies the table);
//   - only when no bucket has to be taken, and every live member has applied t, is each bucket without an
//     owner given to the ring's choice.
//
// So a bucket gets an owner only after every live member has applied a table in which nobody owns it: no two
// members ever own it at once, whatever order they see the tables in.
func Next(t Table, live []Member) (Table, bool) {
	names := make([]string, 0, len(live))
	for _, m := range live {
		names = append(names, m.Name)
	}
	want := NewRing(names).Owners()

	next := t
	taken := false
	for b, owner := range t.Owners {
		if owner != "" && owner != want[b] {
			next.Owners[b] = ""
			taken = true
		}
	}
	if taken {
		next.Generation++
		return next, true
	}
	for _, m := range live {
		if m.Applied < t.Generation {
			return t, false
		}
	}
	given := false
	for b, owner := range t.Owners {
		if owner == "" && want[b] != "" {
			next.Owners[b] = want[b]
			given = true
		}
	}
	if given {
		next.Generation++
	}
	return next, given
}
