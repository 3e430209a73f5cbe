// Package transfer owns the work: the JetStream queue of copy jobs, the
// workers that take jobs from it, and the streaming copier that makes one S3
// key match its OSS source. The OSS and S3 clients live behind the small
// Source and Destination interfaces declared here.
package transfer
