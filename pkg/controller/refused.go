package controller

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/berthdev/berth/pkg/plan"
)

// Writes of an App's objects that the API server refuses for a reason the App's user must see.

// errRefused marks a sync whose write of an owned object the API server refused: the App's status says why, and
// the key is retried with backoff, since what refused it (a quota, a policy) may change without the App.
var errRefused = errors.New("the API server refused a write")

// refusedOr records in obs a write (what, e.g. `create Deployment "web"`) that the API server refused for a
// reason the App's user must see: a quota, an admission policy or webhook, a permission, or validation. Any other
// error is returned as it is, to be retried. Only the first refusal of a sync is recorded.
func (obs *observation) refusedOr(what string, err error) error {
	reason := refusalReason(err)
	if reason == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	if obs.Refused == nil {
		obs.Refused = &plan.Refusal{Reason: reason, Message: fmt.Sprintf("the API server refused to %s: %s", what, apiMessage(err))}
	}
	return nil
}

// refusalReason classifies an error of a write as a refusal, or returns "" for an error that is not one.
func refusalReason(err error) string {
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// Not a refusal of what berth wrote: the namespace, and the App with it, is going away.
		return ""
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		return plan.ReasonQuotaExceeded
	case apierrors.IsForbidden(err):
		return plan.ReasonForbidden
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsRequestEntityTooLargeError(err):
		return plan.ReasonRejected
	}
	return ""
}

// apiMessage is the API server's own message of an error, without client-go's wrapping.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Message != "" {
		return status.Status().Message
	}
	return err.Error()
}
