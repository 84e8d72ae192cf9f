// The Bus contract against the real Kafka broker that `npm test` starts.
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import { busContract } from '../../contract/bus-contract.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';

busContract('kafka', async () => {
  const brokers = [sharedBrokers()];
  const topicPrefix = uniquePrefix('contract');
  const made: KafkaBus[] = [];
  const open = async () => {
    const bus = new KafkaBus({ brokers, topicPrefix, partitions: 3, clientId: `contract-${topicPrefix}` });
    made.push(bus);
    await bus.connect();
    return bus;
  };
  const bus = await open();
  return {
    bus,
    reopen: open,
    cleanup: async () => { await Promise.all(made.map((b) => b.close())); },
  };
});
