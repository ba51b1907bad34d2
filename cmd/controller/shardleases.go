package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationv1listers "k8s.io/client-go/listers/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/pkg/shard"
)

// The Leases of sharding (--sharding), beside the leader-election Lease in its namespace: one per member, which
// the member renews and in which it says which generation of the table it has applied, and one that holds the
// table, written by the assigner (the leader). All carry labelSharding with the leader-election ID, so that
// one watch serves both the members and the assigner.
const (
	labelSharding = "berth.dev/sharding"
	labelRole     = "berth.dev/sharding-role"
	roleMember    = "member"
	roleTable     = "assignment"

	// annotationApplied, on a member's Lease: the generation of the table it has applied.
	annotationApplied = "berth.dev/applied-generation"
	// annotationGeneration and annotationOwners, on the table's Lease: shard.Table's generation and owners.
	annotationGeneration = "berth.dev/generation"
	annotationOwners     = "berth.dev/owners"
)

// shardLeases watches the Leases of sharding.
type shardLeases struct {
	id        string
	namespace string
	factory   informers.SharedInformerFactory
	informer  cache.SharedIndexInformer
	lister    coordinationv1listers.LeaseNamespaceLister
}

func newShardLeases(client kubernetes.Interface, namespace, id string) *shardLeases {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{labelSharding: id}).String()
		}))
	leases := factory.Coordination().V1().Leases()
	return &shardLeases{id: id, namespace: namespace, factory: factory, informer: leases.Informer(),
		lister: leases.Lister().Leases(namespace)}
}

// onChange calls f, which must not block, at every change of the Leases.
func (l *shardLeases) onChange(f func()) error {
	_, err := l.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f() },
		UpdateFunc: func(any, any) { f() },
		DeleteFunc: func(any) { f() },
	})
	return err
}

func (l *shardLeases) start(ctx context.Context) { l.factory.Start(ctx.Done()) }
func (l *shardLeases) hasSynced() bool           { return l.informer.HasSynced() }

// tableName is the name of the table's Lease.
func (l *shardLeases) tableName() string { return l.id + "-shards" }

// memberLeaseName is the name of the Lease of the member named identity: a hash of it, since an identity (a host
// name and a UUID joined by "_") is not a valid object name.
func (l *shardLeases) memberLeaseName(identity string) string {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return fmt.Sprintf("%s-member-%016x", l.id, h.Sum64())
}

// table reads the table from the cache; lease is nil when there is none yet (no assigner has written one).
func (l *shardLeases) table() (table shard.Table, lease *coordinationv1.Lease, err error) {
	lease, err = l.lister.Get(l.tableName())
	if apierrors.IsNotFound(err) {
		return shard.Table{}, nil, nil
	}
	if err != nil {
		return shard.Table{}, nil, err
	}
	table, err = shard.DecodeTable(lease.Annotations[annotationGeneration], lease.Annotations[annotationOwners])
	if err != nil {
		return shard.Table{}, nil, fmt.Errorf("reading the table of Lease %s: %w", lease.Name, err)
	}
	return table, lease, nil
}

// members are the members' Leases in the cache.
func (l *shardLeases) members() ([]*coordinationv1.Lease, error) {
	return l.lister.List(labels.SelectorFromSet(labels.Set{labelSharding: l.id, labelRole: roleMember}))
}

// applied reads the generation a member's Lease says it applied; 0 when it says none.
func applied(lease *coordinationv1.Lease) int64 {
	g, err := strconv.ParseInt(lease.Annotations[annotationApplied], 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// holder is the identity of the member whose Lease this is.
func holder(lease *coordinationv1.Lease) string { return ptr.Deref(lease.Spec.HolderIdentity, "") }
