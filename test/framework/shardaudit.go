package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/shard"
)

// AppBuckets are the buckets of the Apps of namespaces, by "namespace/name", as CheckShardWriters takes them.
func AppBuckets(ctx context.Context, client versioned.Interface, namespaces ...string) (map[string]int, error) {
	buckets := map[string]int{}
	for _, ns := range namespaces {
		list, err := client.BerthV1alpha1().Apps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, a := range list.Items {
			buckets[ns+"/"+a.Name] = shard.BucketOf(a.UID)
		}
	}
	return buckets, nil
}

// ShardWriters is what CheckShardWriters found in the audit log.
type ShardWriters struct {
	// Tables is how many writes of the table of the buckets' owners the log holds.
	Tables int
	// Writes are the writes of berth's members to the Apps and their objects; Draining those made by a member
	// while the table gave the App's bucket to nobody and that member was its last owner.
	Writes, Draining int
	// Apps is how many Apps were written; Moved how many of them by more than one member in turn.
	Apps, Moved int
	// Violations are the writes by a member that the table in force did not allow, one line each.
	Violations []string
}

// CheckShardWriters reads from the audit log every write since since of the table of the buckets' owners (the
// Lease tableLease, which hack/cluster-up.sh logs with its content) and every write of berth's members (user
// agent "berth/<identity>", the assigner's "…/assigner" left out) to the objects named in buckets ("namespace/
// name" of each App, with its bucket: an App, its status, and the objects it owns, which have its name). It
// checks each member's write against the table in force when the write completed: a member may write while the
// table gives it the App's bucket, or while the table gives the bucket to nobody and the member was its last
// owner (it is draining the bucket). Any other write is a second writer.
func (c *Cluster) CheckShardWriters(since time.Time, tableLease string, buckets map[string]int) (ShardWriters, error) {
	var report ShardWriters
	events, err := c.Writes(since, func(e AuditEvent) bool {
		if e.ObjectRef.Resource == "leases" {
			return e.ObjectRef.Name == tableLease && e.ResponseStatus.Code < 300
		}
		_, ok := buckets[e.ObjectRef.Namespace+"/"+e.ObjectRef.Name]
		return ok && e.ByBerth() && !strings.HasSuffix(e.UserAgent, "/assigner") && e.ObjectRef.Resource != "events"
	})
	if err != nil {
		return report, err
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].StageTimestamp.Before(events[j].StageTimestamp) })

	var table shard.Table
	var lastOwner [shard.Buckets]string
	writers := map[string]map[string]bool{}
	for _, e := range events {
		if e.ObjectRef.Resource == "leases" {
			var lease coordinationv1.Lease
			if err := json.Unmarshal(e.RequestObject, &lease); err != nil {
				return report, fmt.Errorf("the audit log's write of the table has no content: %w", err)
			}
			if table, err = shard.DecodeTable(lease.Annotations["berth.dev/generation"],
				lease.Annotations["berth.dev/owners"]); err != nil {
				return report, err
			}
			for b, owner := range table.Owners {
				if owner != "" {
					lastOwner[b] = owner
				}
			}
			report.Tables++
			continue
		}
		key := e.ObjectRef.Namespace + "/" + e.ObjectRef.Name
		bucket := buckets[key]
		member := strings.TrimPrefix(e.UserAgent, "berth/")
		report.Writes++
		if writers[key] == nil {
			writers[key] = map[string]bool{}
		}
		writers[key][member] = true
		switch owner := table.Owners[bucket]; {
		case owner == member:
		case owner == "" && lastOwner[bucket] == member:
			report.Draining++
		default:
			report.Violations = append(report.Violations, fmt.Sprintf(
				"%s: member %s wrote while generation %d of the table gives bucket %d to %q (last owner %q)",
				e, member, table.Generation, bucket, owner, lastOwner[bucket]))
		}
	}
	report.Apps = len(writers)
	for _, members := range writers {
		if len(members) > 1 {
			report.Moved++
		}
	}
	return report, nil
}
