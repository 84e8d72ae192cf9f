// kafkajs sorts every sendBatch's messages into partitions with a reduce that copies the partition's
// list and the result object for each message (quadratic in a partition's share of the batch). At
// full webhook speed that was about 9% of the producer's thread, a tenth of it the partitioner.
// This puts a one-pass version with the same result behind kafkajs' module, in this process's
// module cache, before kafkajs loads it.
import { replaceBeforeLoad } from './module-patch.ts';

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
type Grouping = (args: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: Partitioner }) => Record<string, unknown[]>;

const GROUPING = 'kafkajs/src/producer/groupMessagesPerPartition.js';
const SEND_MESSAGES = 'kafkajs/src/producer/sendMessages.js';

/** Messages per partition, in the order given: what kafkajs' groupMessagesPerPartition returns. */
export const groupPerPartition: Grouping = ({ topic, partitionMetadata, messages, partitioner }) => {
  const result: Record<string, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
};

/** kafkajs' own function, kept for the equivalence test; undefined when nothing was replaced. */
export const kafkajsGrouping: Grouping | undefined = replaceBeforeLoad<Grouping>(GROUPING, SEND_MESSAGES, 1, () => groupPerPartition);

/**
 * True when kafkajs' producer will use groupPerPartition. False (kafkajs keeps its own) when its
 * module layout is not the one this was written against, or when its producer was loaded already,
 * having bound the original: so this runs on import, from client.ts, ahead of kafkajs itself.
 */
export const linearGrouping: boolean = kafkajsGrouping !== undefined;
