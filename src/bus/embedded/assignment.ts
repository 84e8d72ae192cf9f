// Which member of a consumer group owns which partition. Pure: every member computes the same
// answer from the same live-member list, and leases in the database fence the moments when two
// members' views differ (a partition is only processed by the holder of its lease).

import type { TopicName } from '../port.ts';

export interface GroupMemberView {
  memberId: string;
  topics: readonly TopicName[];
}

export interface TopicPartition {
  topic: TopicName;
  partition: number;
}

/**
 * Partitions of each topic are dealt round-robin over the members subscribed to that topic,
 * sorted by id. Returns the partitions `memberId` should own (empty if it is not a member).
 */
export function assignedPartitions(members: readonly GroupMemberView[], memberId: string, partitions: number): TopicPartition[] {
  const me = members.find((m) => m.memberId === memberId);
  if (!me) return [];
  const out: TopicPartition[] = [];
  for (const topic of [...new Set(me.topics)].sort()) {
    const subscribed = members.filter((m) => m.topics.includes(topic)).map((m) => m.memberId).sort();
    const index = subscribed.indexOf(memberId);
    for (let p = index; p < partitions; p += subscribed.length) out.push({ topic, partition: p });
  }
  return out;
}
