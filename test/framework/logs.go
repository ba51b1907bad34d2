package framework

import (
	"regexp"
	"strings"
)

// permissionDenial matches the API server's refusals for want of permission, as client-go's errors word them:
// the authorizer's, and the admission check of blockOwnerDeletion (OwnerReferencesPermissionEnforcement); not
// other refusals called forbidden, such as a write in a namespace being deleted.
var permissionDenial = regexp.MustCompile(`forbidden: (User .* cannot |cannot set blockOwnerDeletion)`)

// PermissionDenials are the lines of log that say that a request was refused for want of permission.
func PermissionDenials(log string) []string {
	var lines []string
	for _, line := range strings.Split(log, "\n") {
		if permissionDenial.MatchString(line) {
			lines = append(lines, line)
		}
	}
	return lines
}
