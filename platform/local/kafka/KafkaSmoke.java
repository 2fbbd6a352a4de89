// Produces one record to a topic on the local broker and reads it back.
// Run by `platform/local/kafka.sh smoke` with the broker's own jars on the
// class path (java's single-file source launcher, no build step).
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaSmoke {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args.length > 1 ? args[1] : "dts-smoke";
        String value = UUID.randomUUID().toString();

        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.send(new ProducerRecord<>(topic, "smoke", value)).get();
        }

        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", "dts-smoke-" + value);
        c.put("auto.offset.reset", "earliest");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    if (value.equals(r.value())) {
                        System.out.println("kafka smoke ok: " + topic + " partition " + r.partition() + " offset " + r.offset());
                        return;
                    }
                }
            }
        }
        System.err.println("kafka smoke FAILED: record not read back from " + topic);
        System.exit(1);
    }
}
