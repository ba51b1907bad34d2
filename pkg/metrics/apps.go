package metrics

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
)

// What a platform team alerts on is the Apps, not berth: how many are degraded, how many are rolling out. These
// gauges are counted at each scrape from berth's cache of Apps, so no sync has to keep them up to date and they
// never disagree with the Apps' status. Every replica reports them (a standby's cache is warm too): aggregate
// with max, not sum.
//
// The per-App series (berth_app_condition, with --metrics-per-app) are three per App: 30,000 for 10,000 Apps. Only
// the replica that leads reports them, so that Prometheus stores them once, not once per replica; a standby
// reports berth_apps alone.

// appConditionTypes are the conditions berth sets, in the order they are reported.
var appConditionTypes = []string{
	berthv1alpha1.ConditionAvailable,
	berthv1alpha1.ConditionProgressing,
	berthv1alpha1.ConditionDegraded,
}

var conditionStatuses = []string{"True", "False", "Unknown"}

var (
	appsDesc = metrics.NewDesc("berth_apps",
		"Apps by condition (Available, Progressing, Degraded) and its status (True, False, Unknown); an App "+
			"whose status does not have the condition yet counts as Unknown.",
		[]string{"condition", "status"}, nil, metrics.ALPHA, "")
	appConditionDesc = metrics.NewDesc("berth_app_condition",
		"1 for each App and each of its conditions, with the condition's status and reason; only with "+
			"--metrics-per-app, and only from the replica that leads, since it has three series per App.",
		[]string{"namespace", "app", "condition", "status", "reason"}, nil, metrics.ALPHA, "")
)

// AppConditions reports berth_apps, and with perApp berth_app_condition while leads says so, from the Apps in
// lister.
type AppConditions struct {
	metrics.BaseStableCollector

	lister berthlisters.AppLister
	perApp bool
	leads  func() bool
}

// NewAppConditions creates the collector and registers it with register: legacyregistry.CustomMustRegister in
// the binary, a registry of its own in tests. leads tells, at each scrape, whether this replica leads (a replica
// without leader election does): only then does it report berth_app_condition.
func NewAppConditions(lister berthlisters.AppLister, perApp bool, leads func() bool,
	register func(...metrics.StableCollector)) *AppConditions {
	c := &AppConditions{lister: lister, perApp: perApp, leads: leads}
	register(c)
	return c
}

// DescribeWithStability implements metrics.StableCollector.
func (c *AppConditions) DescribeWithStability(ch chan<- *metrics.Desc) {
	ch <- appsDesc
	if c.perApp {
		ch <- appConditionDesc
	}
}

// CollectWithStability implements metrics.StableCollector.
func (c *AppConditions) CollectWithStability(ch chan<- metrics.Metric) {
	apps, err := c.lister.List(labels.Everything())
	if err != nil {
		return // a lister reads memory: it fails only with an invalid selector
	}
	perApp := c.perApp && c.leads()
	type key struct{ condition, status string }
	counts := map[key]int{}
	for _, app := range apps {
		for _, conditionType := range appConditionTypes {
			status, reason := "Unknown", ""
			if cond := meta.FindStatusCondition(app.Status.Conditions, conditionType); cond != nil {
				status, reason = string(cond.Status), cond.Reason
			}
			counts[key{conditionType, status}]++
			if perApp {
				ch <- metrics.NewLazyConstMetric(appConditionDesc, metrics.GaugeValue, 1,
					app.Namespace, app.Name, conditionType, status, reason)
			}
		}
	}
	// Every combination, zeros included: an alert on a series that is absent would never fire.
	for _, conditionType := range appConditionTypes {
		for _, status := range conditionStatuses {
			ch <- metrics.NewLazyConstMetric(appsDesc, metrics.GaugeValue,
				float64(counts[key{conditionType, status}]), conditionType, status)
		}
	}
}
