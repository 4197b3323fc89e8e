// Package collective will hold the Comm interface (all-reduce,
// reduce-scatter, all-gather over a TCP ring or NCCL) and the rendezvous
// store. Nothing is implemented yet; see README: Status.
package collective
