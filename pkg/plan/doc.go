// Package plan decides; pkg/controller acts. What an App wants (the Deployment and Service it owns) and what its
// status says are pure functions of their inputs here: no clients, no caches, no clock but the one passed in.
// They are tested with tables and fuzzing, and the controller calls them from its sync.
package plan
