package redis

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPartitionsSpreadOverMasters checks partitionTag's placement: on a
// cluster whose masters hold equal runs of slots, as redis-cli --cluster
// create and redistest.StartCluster split them, every master holds the
// same number of partitions when the number of partitions is a multiple
// of the number of masters.
func TestPartitionsSpreadOverMasters(t *testing.T) {
	for _, count := range []int{1, 2, 3, 4, 6, 8, 12, 16, 24, 64} {
		for masters := 1; masters <= count; masters++ {
			if count%masters != 0 {
				continue
			}
			held := make([]int, masters)
			for n := range count {
				sl := keySlot(partitionTag(n, count))
				for m := range masters {
					if sl >= m*clusterSlots/masters && sl < (m+1)*clusterSlots/masters {
						held[m]++
					}
				}
			}
			for m := range masters {
				assert.Equal(t, count/masters, held[m], "%d partitions over %d masters: master %d holds %v", count, masters, m, held)
			}
		}
	}
}

// TestPartitionTagIsStable pins the tags of the default partitions: a
// change would strand the tasks and timers of every deployment (the
// reconciler would find the runs again, with a scan of the keyspace).
func TestPartitionTagIsStable(t *testing.T) {
	var tags []string
	for n := range DefaultPartitions {
		tags = append(tags, partitionTag(n, DefaultPartitions))
	}
	assert.Equal(t, []string{"p:0", "p:1:21", "p:2:11", "p:3:42", "p:4:21", "p:5:1"}, tags)
}
