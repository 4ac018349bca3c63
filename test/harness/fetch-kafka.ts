/**
 * Pre-fetch (and cache) the Kafka broker jars, e.g. in a CI step before the integration tests:
 *   node --import tsx test/harness/fetch-kafka.ts
 * Prints the jar dir. Honours SUPSUPD_KAFKA_VERSION and SUPSUPD_CACHE_DIR.
 */
import { ensureKafkaJars, kafkaJarsCached, kafkaVersion } from './kafka.js';

const cached = kafkaJarsCached();
const dir = await ensureKafkaJars({ log: (line) => console.error(line) });
console.error(`kafka ${kafkaVersion()} jars ${cached ? 'already cached' : 'fetched'} in ${dir}`);
console.log(dir);
