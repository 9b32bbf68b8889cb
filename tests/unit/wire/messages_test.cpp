// Every message: encode/decode round trips, and every kind of malformed frame rejected with the
// right error (truncated at every length, trailing bytes, wrong version in either published
// shape, unknown type, wrong frame count, bad topic, over-limit lengths, forbidden values).
#include "wire/messages.h"

#include <boost/test/unit_test.hpp>

#include "wire/byte_io.h"

namespace wire = rhythm::wire;
using wire::DecodeError;

namespace {

wire::SessionKey key_of(std::uint8_t seed) {
    wire::SessionKey k;
    for (std::size_t i = 0; i < k.bytes.size(); ++i) {
        k.bytes[i] = static_cast<std::uint8_t>(seed * 31 + i);
    }
    return k;
}

const std::string kData(1024, 'd');

// A header, of this protocol version unless told.
std::string header(wire::MessageType type, std::uint8_t version = wire::kProtocolVersion) {
    return {static_cast<char>(version), static_cast<char>(type)};
}

constexpr std::size_t kVersionAt = wire::kTopicBytes;   // in a published message's frame
constexpr std::size_t kTypeAt = wire::kTopicBytes + 1;  // in a published message's frame

wire::SessionRecord live_record() {
    wire::SessionRecord r;
    r.key = key_of(1);
    r.version = 42;
    r.expires_at_ms = 1800000000000ULL;
    r.origin = "web1.example:443";
    r.data = kData;
    return r;
}

wire::SessionRecord tombstone_record() {
    wire::SessionRecord r = live_record();
    r.tombstone = true;
    r.data = {};
    r.version = 43;
    return r;
}

wire::Published published(bool tombstone) {
    wire::Published p;
    p.sender.agent_id.fill(0xa5);
    p.sender.epoch = 7;
    p.sender.sequence = 99;
    p.sender.shard_sequence = 41;
    p.record = tombstone ? tombstone_record() : live_record();
    return p;
}

wire::HeartbeatAck heartbeat_ack(std::string_view endpoint) {
    wire::HeartbeatAck ack;
    ack.request_id = 10;
    ack.epoch = 1700000000;
    ack.node_name = "node-a";
    ack.updates_endpoint = endpoint;
    ack.owned.add(3);
    ack.owned.add(1023);
    ack.full = true;
    ack.refused = 77;
    ack.refusing.add(1023);
    ack.shard_acks = {{3, 12000}, {1023, 1}};
    return ack;
}

// One sample of every DEALER <-> ROUTER message type.
std::vector<wire::Message> samples() {
    std::vector<wire::Message> out;
    out.push_back(wire::Fetch{5, key_of(2)});
    out.push_back(wire::FetchReply{6, wire::FetchStatus::kFound, live_record()});
    out.push_back(wire::FetchReply{7, wire::FetchStatus::kNotFound, {}});
    out.push_back(wire::FetchReply{8, wire::FetchStatus::kDeleted, tombstone_record()});
    out.push_back(wire::FetchReply{9, wire::FetchStatus::kFound, live_record(), false});
    out.push_back(wire::FetchReply{10, wire::FetchStatus::kFound, live_record(), true, true});
    out.push_back(wire::FetchReply{10, wire::FetchStatus::kNotFound, {}, true, true});
    wire::Heartbeat hb;
    hb.request_id = 9;
    hb.agent_id.fill(3);
    hb.epoch = 1700000000;
    hb.next_sequence = 12345;
    hb.server_name = "web1:80";
    out.push_back(hb);
    out.push_back(heartbeat_ack("tcp://10.0.0.1:5556"));
    wire::Resend resend;
    resend.epoch = 4;
    resend.from_sequence = 77;
    resend.shards.add(0);
    resend.shards.add(1023);
    out.push_back(resend);
    wire::Refused refused;
    refused.refusals.push_back({key_of(4), 8});
    refused.refusals.push_back({key_of(5), 9});
    out.push_back(refused);
    out.push_back(wire::SnapshotRequest{11, wire::ShardSet::all()});
    out.push_back(wire::SnapshotRecord{12, live_record()});
    out.push_back(wire::SnapshotRecord{12, tombstone_record()});
    out.push_back(wire::SnapshotEnd{12, 2});
    out.push_back(wire::StatusRequest{13});
    out.push_back(wire::StatusReply{13, R"({"sessions":1})"});
    out.push_back(wire::Ping{14, "node-b"});
    out.push_back(wire::Pong{14, "node-a"});
    out.push_back(wire::ErrorReply{15, wire::ErrorCode::kMalformed, "bad"});
    out.push_back(wire::EndSession{16, wire::EndScope::kOne, key_of(6)});
    out.push_back(wire::EndSession{17, wire::EndScope::kAll, {}});
    out.push_back(wire::EndSessionReply{16, wire::EndSessionOutcome::kEnded, 1});
    out.push_back(wire::EndSessionReply{17, wire::EndSessionOutcome::kRefused, 12});
    out.push_back(wire::Handover{18, key_of(7), 41});
    out.push_back(wire::HandoverReply{18, true, live_record()});
    out.push_back(wire::HandoverReply{18, true, tombstone_record()});
    out.push_back(wire::HandoverReply{19, false, {}});
    wire::ShardSet missed;
    missed.add(0);
    missed.add(1023);
    out.push_back(wire::CatchUpOffer{20, missed, "node-c"});
    out.push_back(wire::Restarting{21});
    return out;
}

std::vector<std::string_view> views(const wire::Frames &frames) {
    return std::vector<std::string_view>(frames.begin(), frames.end());
}

wire::DecodeResult decode(const wire::Frames &frames, wire::Message *out) {
    auto v = views(frames);
    return wire::decode_message(v, out);
}

wire::DecodeResult decode_pub(const wire::Frames &frames, wire::Published *out) {
    auto v = views(frames);
    return wire::decode_published(v, out);
}

// Messages whose last field is free text: shortening them leaves a valid, shorter text.
std::size_t free_text_from(const wire::Message &m) {
    auto t = wire::message_type(m);
    if (t == wire::MessageType::kStatusReply) {
        return 8;
    }
    if (t == wire::MessageType::kError) {
        return 9;
    }
    return SIZE_MAX;
}

std::string record_bytes(const wire::SessionKey &key, std::uint64_t version, std::uint8_t flags,
                         std::string_view origin, std::uint32_t data_len, std::string_view data) {
    std::string b;
    wire::put_bytes(&b, key.bytes.data(), key.bytes.size());
    wire::put_u64(&b, version);
    wire::put_u64(&b, 0);
    wire::put_u8(&b, flags);
    wire::put_u8(&b, static_cast<std::uint8_t>(origin.size()));
    wire::put_u32(&b, data_len);
    wire::put_bytes(&b, origin.data(), origin.size());
    wire::put_bytes(&b, data.data(), data.size());
    return b;
}

wire::Frames fetch_reply_frames(std::string record) {
    std::string body;
    wire::put_u64(&body, 1);
    wire::put_u8(&body, 0);  // found
    wire::put_u8(&body, 1);  // by an owner
    body += record;
    return {header(wire::MessageType::kFetchReply), body};
}

DecodeError error_of_record(std::string record) {
    wire::Message m;
    return decode(fetch_reply_frames(std::move(record)), &m).error;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(messages)

BOOST_AUTO_TEST_CASE(every_message_round_trips) {
    for (const auto &m : samples()) {
        wire::Frames frames = wire::encode_message(m);
        BOOST_TEST_REQUIRE(frames.size() == 2u);
        BOOST_TEST(static_cast<int>(frames[0][0]) == wire::kProtocolVersion);
        wire::Message back;
        auto result = decode(frames, &back);
        BOOST_TEST_REQUIRE(result.ok(), wire::message_type_name(wire::message_type(m))
                                            << ": " << result.message);
        BOOST_TEST(back.index() == m.index());
        // Decoding is the inverse of encoding: the decoded message encodes to the same bytes.
        BOOST_TEST((wire::encode_message(back) == frames));
    }
}

BOOST_AUTO_TEST_CASE(an_end_of_all_sessions_names_no_session_and_a_scope_it_knows) {
    wire::Frames frames = wire::encode_message(wire::EndSession{1, wire::EndScope::kAll, {}});
    wire::Message back;
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    BOOST_TEST((std::get<wire::EndSession>(back).scope == wire::EndScope::kAll));
    wire::Frames with_key = frames;
    with_key[1][9 + 3] = 1;  // a byte of the key
    BOOST_TEST((decode(with_key, &back).error == DecodeError::kBadValue));
    wire::Frames unknown_scope = frames;
    unknown_scope[1][8] = 2;
    BOOST_TEST((decode(unknown_scope, &back).error == DecodeError::kBadValue));
    wire::Frames reply =
        wire::encode_message(wire::EndSessionReply{1, wire::EndSessionOutcome::kEnded, 3});
    reply[1][8] = 3;  // no such outcome
    BOOST_TEST((decode(reply, &back).error == DecodeError::kBadValue));
}

BOOST_AUTO_TEST_CASE(a_handover_reply_carries_a_copy_or_nothing) {
    wire::Message back;
    wire::Frames newer = wire::encode_message(wire::HandoverReply{1, true, live_record()});
    BOOST_TEST_REQUIRE(decode(newer, &back).ok());
    BOOST_TEST(std::get<wire::HandoverReply>(back).record.data == kData);
    wire::Frames deleted = wire::encode_message(wire::HandoverReply{1, true, tombstone_record()});
    BOOST_TEST_REQUIRE(decode(deleted, &back).ok());
    BOOST_TEST(std::get<wire::HandoverReply>(back).record.tombstone);
    wire::Frames nothing = wire::encode_message(wire::HandoverReply{1, false, {}});
    nothing[1][8] = 2;  // neither 0 nor 1
    BOOST_TEST((decode(nothing, &back).error == DecodeError::kBadValue));
    nothing[1][8] = 0;
    nothing[1] += '\0';
    BOOST_TEST((decode(nothing, &back).error == DecodeError::kTrailingBytes));
    wire::Frames handover = wire::encode_message(wire::Handover{2, key_of(3), 9});
    BOOST_TEST_REQUIRE(decode(handover, &back).ok());
    BOOST_TEST(std::get<wire::Handover>(back).version == 9u);
    handover[1].pop_back();
    BOOST_TEST((decode(handover, &back).error == DecodeError::kTruncated));
}

BOOST_AUTO_TEST_CASE(decoded_fields_are_the_encoded_ones) {
    // The decoded views point into these frames: they must outlive `back`'s use.
    wire::Frames frames =
        wire::encode_message(wire::FetchReply{6, wire::FetchStatus::kFound, live_record()});
    wire::Message back;
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    const auto &reply = std::get<wire::FetchReply>(back);
    BOOST_TEST(reply.request_id == 6u);
    BOOST_TEST(reply.record.version == 42u);
    BOOST_TEST(reply.record.expires_at_ms == 1800000000000ULL);
    BOOST_TEST(reply.record.origin == "web1.example:443");
    BOOST_TEST(reply.record.data == kData);
    BOOST_TEST((reply.record.key == key_of(1)));
    BOOST_TEST(!reply.record.tombstone);
    BOOST_TEST(reply.owner);
    frames =
        wire::encode_message(wire::FetchReply{6, wire::FetchStatus::kFound, live_record(), false});
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    BOOST_TEST(!std::get<wire::FetchReply>(back).owner);
    BOOST_TEST(!std::get<wire::FetchReply>(back).provisional);
    frames = wire::encode_message(
        wire::FetchReply{6, wire::FetchStatus::kFound, live_record(), true, true});
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    BOOST_TEST(std::get<wire::FetchReply>(back).owner);
    BOOST_TEST(std::get<wire::FetchReply>(back).provisional);
    BOOST_TEST(!std::get<wire::FetchReply>(back).asking);
    frames = wire::encode_message(
        wire::FetchReply{6, wire::FetchStatus::kNotFound, {}, true, false, true});
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    BOOST_TEST(std::get<wire::FetchReply>(back).asking);
    wire::ShardSet missed;
    missed.add(7);
    frames = wire::encode_message(wire::CatchUpOffer{3, missed, "node-b"});
    BOOST_TEST_REQUIRE(decode(frames, &back).ok());
    const auto &offer = std::get<wire::CatchUpOffer>(back);
    BOOST_TEST(offer.shards.contains(7));
    BOOST_TEST(offer.shards.count() == 1u);
    BOOST_TEST(offer.node_name == "node-b");
}

BOOST_AUTO_TEST_CASE(fetch_reply_flags_are_owner_provisional_and_asking_only) {
    wire::Message back;
    for (std::uint8_t flags = 0; flags < 16; ++flags) {
        std::string body;
        wire::put_u64(&body, 1);
        wire::put_u8(&body, 1);  // not found
        wire::put_u8(&body, flags);
        // Provisional only with owner; asking only with owner alone.
        bool valid = flags == 0 || flags == 1 || flags == 3 || flags == 5;
        BOOST_TEST(decode({header(wire::MessageType::kFetchReply), body}, &back).ok() == valid,
                   "flags " << int(flags));
    }
    // An interim answer carries no record.
    wire::Frames frames =
        wire::encode_message(wire::FetchReply{6, wire::FetchStatus::kFound, live_record()});
    frames[1][9] = wire::kFetchFlagOwner | wire::kFetchFlagAsking;
    BOOST_TEST((decode(frames, &back).error == DecodeError::kBadValue));
}

BOOST_AUTO_TEST_CASE(a_catch_up_offer_names_a_node) {
    wire::Message back;
    wire::Frames frames = wire::encode_message(wire::CatchUpOffer{3, wire::ShardSet::all(), "n"});
    frames[1].back() = ' ';  // unprintable in a name
    BOOST_TEST((decode(frames, &back).error == DecodeError::kBadValue));
    frames[1].pop_back();
    frames[1].back() = 0;  // empty name
    BOOST_TEST((decode(frames, &back).error == DecodeError::kBadValue));
    frames = wire::encode_message(wire::CatchUpOffer{3, wire::ShardSet::all(), "n"});
    frames[1] += 'x';
    BOOST_TEST((decode(frames, &back).error == DecodeError::kTrailingBytes));
}

BOOST_AUTO_TEST_CASE(published_updates_and_tombstones_round_trip) {
    for (bool tombstone : {false, true}) {
        wire::Frames frames = wire::encode_published(published(tombstone));
        BOOST_TEST_REQUIRE(frames.size() == 1u);
        const std::string &frame = frames[0];
        // One frame: topic (the subscription prefix), header, sender stamp, record.
        std::string_view data = tombstone ? std::string_view() : std::string_view(kData);
        BOOST_TEST(frame.size() ==
                   4 + 40 + 38 + std::string_view("web1.example:443").size() + data.size());
        BOOST_TEST(frame.substr(0, 2) == wire::topic_for_shard(wire::shard_of(key_of(1))));
        BOOST_TEST(frame[kVersionAt] == wire::kProtocolVersion);
        BOOST_TEST(frame[kTypeAt] == static_cast<char>(tombstone ? wire::MessageType::kTombstone
                                                                 : wire::MessageType::kUpdate));
        wire::Published back;
        auto result = decode_pub(frames, &back);
        BOOST_TEST_REQUIRE(result.ok(), result.message);
        BOOST_TEST(back.sender.epoch == 7u);
        BOOST_TEST(back.sender.sequence == 99u);
        BOOST_TEST(back.sender.shard_sequence == 41u);
        BOOST_TEST(back.sender.agent_id[15] == 0xa5);
        BOOST_TEST((back.record.key == key_of(1)));
        BOOST_TEST(back.record.tombstone == tombstone);
        BOOST_TEST(back.record.data == data);
        // The decoded data is a view of the received frame, not a copy.
        BOOST_TEST(
            (back.record.data.data() + back.record.data.size() == frame.data() + frame.size()));
        BOOST_TEST((wire::encode_published(back) == frames));
    }
}

BOOST_AUTO_TEST_CASE(every_truncation_is_rejected) {
    for (const auto &m : samples()) {
        wire::Frames frames = wire::encode_message(m);
        std::string body = frames[1];
        std::size_t limit = std::min(body.size(), free_text_from(m));
        for (std::size_t len = 0; len < limit; ++len) {
            frames[1] = body.substr(0, len);
            wire::Message out;
            auto result = decode(frames, &out);
            BOOST_TEST_REQUIRE(!result.ok(), wire::message_type_name(wire::message_type(m))
                                                 << " accepted at " << len << " bytes");
            BOOST_TEST_REQUIRE(result.message != nullptr);
        }
    }
    // A published message cut anywhere, in its topic, header, sender stamp or record.
    for (bool tombstone : {false, true}) {
        const std::string frame = wire::encode_published(published(tombstone))[0];
        for (std::size_t len = 0; len < frame.size(); ++len) {
            wire::Published out;
            auto result = decode_pub({frame.substr(0, len)}, &out);
            BOOST_TEST_REQUIRE((result.error == DecodeError::kTruncated),
                               "published accepted or misnamed at " << len << " bytes");
            BOOST_TEST_REQUIRE(result.message != nullptr);
        }
    }
}

BOOST_AUTO_TEST_CASE(trailing_bytes_are_rejected) {
    for (const auto &m : samples()) {
        if (free_text_from(m) != SIZE_MAX) {
            continue;
        }
        wire::Frames frames = wire::encode_message(m);
        frames[1] += 'x';
        wire::Message out;
        auto result = decode(frames, &out);
        BOOST_TEST(!result.ok(), wire::message_type_name(wire::message_type(m)));
    }
    wire::Frames frames = wire::encode_published(published(false));
    frames[0] += 'x';
    wire::Published out;
    BOOST_TEST((decode_pub(frames, &out).error == DecodeError::kTrailingBytes));
}

BOOST_AUTO_TEST_CASE(wrong_version_is_reported_as_such) {
    const std::uint8_t other = wire::kProtocolVersion + 1;
    wire::Frames frames = wire::encode_message(wire::StatusRequest{1});
    frames[0][0] = static_cast<char>(other);
    wire::Message out;
    BOOST_TEST((decode(frames, &out).error == DecodeError::kVersionMismatch));
    std::uint8_t version = 0;
    wire::MessageType type;
    BOOST_TEST(
        (wire::decode_header(frames[0], &version, &type).error == DecodeError::kVersionMismatch));
    BOOST_TEST(version == other);
    // Even a message of another version with other frame counts is named a version mismatch.
    frames.push_back("extra");
    BOOST_TEST((decode(frames, &out).error == DecodeError::kVersionMismatch));
}

BOOST_AUTO_TEST_CASE(published_of_another_version_is_reported_as_such) {
    wire::Published p;
    const std::string frame = wire::encode_published(published(false))[0];
    const std::string topic = frame.substr(0, wire::kTopicBytes);
    const std::string body = frame.substr(wire::kPublishedBodyOffset);
    // One frame, as from version 3 on, naming an older or a newer version.
    for (std::uint8_t version : {std::uint8_t{wire::kProtocolVersion - 1},
                                 std::uint8_t{wire::kProtocolVersion + 1}, std::uint8_t{0}}) {
        std::string other = frame;
        other[kVersionAt] = static_cast<char>(version);
        BOOST_TEST((decode_pub({other}, &p).error == DecodeError::kVersionMismatch));
        // The header's place does not move, whatever follows.
        BOOST_TEST((decode_pub({other, "extra"}, &p).error == DecodeError::kVersionMismatch));
    }
    // Three frames, as versions 1 and 2 published: topic, header, body (a version 2 agent).
    for (std::uint8_t version : {std::uint8_t{1}, std::uint8_t{2}}) {
        wire::Frames old_shape{topic, header(wire::MessageType::kUpdate, version), body};
        BOOST_TEST((decode_pub(old_shape, &p).error == DecodeError::kVersionMismatch));
        old_shape.push_back("extra");
        BOOST_TEST((decode_pub(old_shape, &p).error == DecodeError::kVersionMismatch));
        BOOST_TEST((decode_pub({topic, header(wire::MessageType::kUpdate, version)}, &p).error ==
                    DecodeError::kVersionMismatch));
    }
    // That shape in this version is no message of it.
    BOOST_TEST((decode_pub({topic, header(wire::MessageType::kUpdate), body}, &p).error ==
                DecodeError::kFrameCount));
}

BOOST_AUTO_TEST_CASE(bad_headers_and_types_are_rejected) {
    wire::Message out;
    wire::Frames frames = wire::encode_message(wire::StatusRequest{1});
    frames[0] = std::string("\x01", 1);
    BOOST_TEST((decode(frames, &out).error == DecodeError::kBadHeader));
    frames[0] = header(wire::MessageType::kStatusRequest) + '\0';
    BOOST_TEST((decode(frames, &out).error == DecodeError::kBadHeader));
    frames[0] = header(wire::MessageType{0});
    BOOST_TEST((decode(frames, &out).error == DecodeError::kUnknownType));
    frames[0] = header(wire::MessageType{wire::kLastMessageType + 1});
    BOOST_TEST((decode(frames, &out).error == DecodeError::kUnknownType));
    frames[0] = header(wire::MessageType{0xff});
    BOOST_TEST((decode(frames, &out).error == DecodeError::kUnknownType));
    // An update outside PUB/SUB, and a request on PUB/SUB.
    frames[0] = header(wire::MessageType::kUpdate);
    BOOST_TEST((decode(frames, &out).error == DecodeError::kUnexpectedType));
    wire::Published p;
    std::string pub = wire::encode_published(published(false))[0];
    pub[kTypeAt] = static_cast<char>(wire::MessageType::kFetch);
    BOOST_TEST((decode_pub({pub}, &p).error == DecodeError::kUnexpectedType));
    pub[kTypeAt] = 0;
    BOOST_TEST((decode_pub({pub}, &p).error == DecodeError::kUnknownType));
    pub[kTypeAt] = static_cast<char>(wire::kLastMessageType + 1);
    BOOST_TEST((decode_pub({pub}, &p).error == DecodeError::kUnknownType));
    // Type and record disagree, both ways.
    pub[kTypeAt] = static_cast<char>(wire::MessageType::kTombstone);
    BOOST_TEST((decode_pub({pub}, &p).error == DecodeError::kBadValue));
    pub = wire::encode_published(published(true))[0];
    pub[kTypeAt] = static_cast<char>(wire::MessageType::kUpdate);
    BOOST_TEST((decode_pub({pub}, &p).error == DecodeError::kBadValue));
}

BOOST_AUTO_TEST_CASE(wrong_frame_counts_are_rejected) {
    wire::Message out;
    wire::Frames frames = wire::encode_message(wire::StatusRequest{1});
    BOOST_TEST((wire::decode_message(wire::FrameSpan(), &out).error == DecodeError::kFrameCount));
    wire::Frames one{frames[0]};
    BOOST_TEST((decode(one, &out).error == DecodeError::kFrameCount));
    frames.push_back("");
    BOOST_TEST((decode(frames, &out).error == DecodeError::kFrameCount));
    // A published message is one frame: a good one followed by anything is refused.
    wire::Published p;
    BOOST_TEST((wire::decode_published(wire::FrameSpan(), &p).error == DecodeError::kFrameCount));
    const std::string pub = wire::encode_published(published(false))[0];
    BOOST_TEST((decode_pub({pub, ""}, &p).error == DecodeError::kFrameCount));
    BOOST_TEST((decode_pub({pub, "x", "y"}, &p).error == DecodeError::kFrameCount));
    BOOST_TEST((decode_pub({pub, pub, pub, pub}, &p).error == DecodeError::kFrameCount));
    // Multi-frame junk with no header where either shape has one.
    BOOST_TEST((decode_pub({"", ""}, &p).error == DecodeError::kFrameCount));
    const std::string update_header = header(wire::MessageType::kUpdate);
    BOOST_TEST((decode_pub({std::string(1, '\0'), update_header, "body"}, &p).error ==
                DecodeError::kFrameCount));
    BOOST_TEST((decode_pub({pub.substr(0, 2), update_header + '\0', "body"}, &p).error ==
                DecodeError::kFrameCount));
    BOOST_TEST((decode_pub({pub.substr(0, 3), "xyz"}, &p).error == DecodeError::kFrameCount));
    BOOST_TEST(
        (decode_pub({pub.substr(0, 2), pub.substr(2)}, &p).error == DecodeError::kFrameCount));
}

BOOST_AUTO_TEST_CASE(bad_topics_are_rejected) {
    const std::string pub = wire::encode_published(published(false))[0];
    wire::Published p;
    for (std::uint32_t shard : {wire::kShardCount, std::uint32_t{0xffff}}) {
        std::string bad = pub;
        bad.replace(0, wire::kTopicBytes, wire::topic_for_shard(shard));
        BOOST_TEST((decode_pub({bad}, &p).error == DecodeError::kBadTopic));
    }
    std::string other_shard = pub;
    other_shard.replace(0, wire::kTopicBytes,
                        wire::topic_for_shard((wire::shard_of(key_of(1)) + 1) % wire::kShardCount));
    BOOST_TEST((decode_pub({other_shard}, &p).error == DecodeError::kWrongShard));
}

BOOST_AUTO_TEST_CASE(bad_records_are_rejected) {
    auto k = key_of(1);
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "web", 1, "x")) == DecodeError::kNone));
    BOOST_TEST((error_of_record(record_bytes(k, 0, 0, "web", 1, "x")) == DecodeError::kBadValue));
    BOOST_TEST((error_of_record(record_bytes(k, 1, 2, "web", 1, "x")) == DecodeError::kBadValue));
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "", 1, "x")) == DecodeError::kBadValue));
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "we b", 1, "x")) == DecodeError::kBadValue));
    BOOST_TEST(
        (error_of_record(record_bytes(k, 1, 0, "we\x7f", 1, "x")) == DecodeError::kBadValue));
    // A tombstone carries no data (in a fetch reply of status found it also disagrees).
    wire::Message m;
    std::string body;
    wire::put_u64(&body, 1);
    wire::put_u8(&body, 2);
    wire::put_u8(&body, 1);
    body += record_bytes(k, 1, 1, "web", 1, "x");
    BOOST_TEST((decode({header(wire::MessageType::kFetchReply), body}, &m).error ==
                DecodeError::kBadValue));
    // Lengths that promise more than the frame holds, up to the largest a field can say.
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "web", 2, "x")) == DecodeError::kTruncated));
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "web", wire::kMaxDataLength, "x")) ==
                DecodeError::kTruncated));
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "web", wire::kMaxDataLength + 1, "x")) ==
                DecodeError::kTooLarge));
    BOOST_TEST(
        (error_of_record(record_bytes(k, 1, 0, "web", 0xffffffffu, "")) == DecodeError::kTooLarge));
    std::string long_origin = record_bytes(k, 1, 0, "web", 0, "");
    long_origin[16 + 8 + 8 + 1] = static_cast<char>(255);  // origin_len 255, 3 bytes present
    BOOST_TEST((error_of_record(long_origin) == DecodeError::kTruncated));
    // The largest legal data decodes.
    std::string big(wire::kMaxDataLength, 'b');
    BOOST_TEST((error_of_record(record_bytes(k, 1, 0, "web", static_cast<std::uint32_t>(big.size()),
                                             big)) == DecodeError::kNone));
}

BOOST_AUTO_TEST_CASE(bad_values_are_rejected) {
    wire::Message m;
    // Fetch reply: unknown status; found with a tombstone.
    std::string body;
    wire::put_u64(&body, 1);
    wire::put_u8(&body, 3);
    wire::put_u8(&body, 1);
    BOOST_TEST((decode({header(wire::MessageType::kFetchReply), body}, &m).error ==
                DecodeError::kBadValue));
    // ... an owner flag that is neither 0 nor 1.
    body.clear();
    wire::put_u64(&body, 1);
    wire::put_u8(&body, 1);
    wire::put_u8(&body, 2);
    BOOST_TEST((decode({header(wire::MessageType::kFetchReply), body}, &m).error ==
                DecodeError::kBadValue));
    wire::Frames frames =
        wire::encode_message(wire::FetchReply{1, wire::FetchStatus::kDeleted, tombstone_record()});
    frames[1][8] = 0;
    BOOST_TEST((decode(frames, &m).error == DecodeError::kBadValue));
    // Published sequence 0.
    wire::Published p = published(false);
    p.sender.sequence = 0;
    wire::Published out;
    BOOST_TEST((decode_pub(wire::encode_published(p), &out).error == DecodeError::kBadValue));
    p = published(false);
    p.sender.shard_sequence = 0;
    BOOST_TEST((decode_pub(wire::encode_published(p), &out).error == DecodeError::kBadValue));
    // Heartbeat ack: a shard out of range; more acks than shards.
    wire::HeartbeatAck ack = heartbeat_ack("tcp://n:1");
    ack.shard_acks[1].shard = wire::kShardCount;
    BOOST_TEST((decode(wire::encode_message(ack), &m).error == DecodeError::kBadValue));
    ack.shard_acks.assign(wire::kShardCount + 1, wire::ShardSequence{1, 1});
    BOOST_TEST((decode(wire::encode_message(ack), &m).error == DecodeError::kTooLarge));
    // Heartbeat ack: a flag bit that means nothing (the flags follow the owned shards).
    frames = wire::encode_message(heartbeat_ack("tcp://n:1"));
    const std::size_t flags_at = 8 + 8 + 1 + 6 + 2 + 9 + wire::kShardBitmapBytes;
    BOOST_TEST(static_cast<int>(frames[1][flags_at]) == wire::kAckFlagFull);
    frames[1][flags_at] |= 0x02;
    BOOST_TEST((decode(frames, &m).error == DecodeError::kBadValue));
    // Refused: count 0, over the limit, disagreeing with the bytes.
    body.clear();
    wire::put_u16(&body, 0);
    BOOST_TEST(
        (decode({header(wire::MessageType::kRefused), body}, &m).error == DecodeError::kBadValue));
    body.clear();
    wire::put_u16(&body, wire::kMaxRefusalsPerMessage + 1);
    BOOST_TEST(
        (decode({header(wire::MessageType::kRefused), body}, &m).error == DecodeError::kTooLarge));
    body.clear();
    wire::put_u16(&body, 0xffff);
    body += std::string(24, 'x');
    BOOST_TEST(
        (decode({header(wire::MessageType::kRefused), body}, &m).error == DecodeError::kTooLarge));
    body.clear();
    wire::put_u16(&body, 2);
    body += std::string(24, 'x');
    BOOST_TEST(
        (decode({header(wire::MessageType::kRefused), body}, &m).error == DecodeError::kTruncated));
    // Error: unknown codes, over-long text.
    frames = wire::encode_message(wire::ErrorReply{1, wire::ErrorCode::kMalformed, "x"});
    frames[1][8] = 0;
    BOOST_TEST((decode(frames, &m).error == DecodeError::kBadValue));
    frames[1][8] = 5;  // filling, until version 5
    BOOST_TEST((decode(frames, &m).error == DecodeError::kBadValue));
    frames[1][8] = 4;
    BOOST_TEST((decode(frames, &m).error == DecodeError::kNone));
    std::string long_text(wire::kMaxErrorTextLength + 1, 'e');
    BOOST_TEST(
        (decode(wire::encode_message(wire::ErrorReply{1, wire::ErrorCode::kMalformed, long_text}),
                &m)
             .error == DecodeError::kTooLarge));
    // Status over its limit.
    std::string huge(wire::kMaxStatusLength + 1, '{');
    BOOST_TEST((decode(wire::encode_message(wire::StatusReply{1, huge}), &m).error ==
                DecodeError::kTooLarge));
    // Names: empty, unprintable.
    BOOST_TEST(
        (decode(wire::encode_message(wire::Ping{1, ""}), &m).error == DecodeError::kBadValue));
    BOOST_TEST(
        (decode(wire::encode_message(wire::Pong{1, "a b"}), &m).error == DecodeError::kBadValue));
    // Heartbeat ack endpoint over the limit.
    std::string endpoint(wire::kMaxEndpointLength + 1, 'e');
    BOOST_TEST((decode(wire::encode_message(heartbeat_ack(endpoint)), &m).error ==
                DecodeError::kTooLarge));
}

BOOST_AUTO_TEST_CASE(shard_sets) {
    wire::ShardSet s;
    BOOST_TEST(s.count() == 0u);
    BOOST_TEST(s.empty());
    s.add(1023);  // the last byte alone is not empty
    BOOST_TEST(!s.empty());
    s.add(0);
    s.add(7);
    BOOST_TEST(s.count() == 3u);
    BOOST_TEST(s.contains(7));
    BOOST_TEST(!s.contains(8));
    BOOST_TEST(!s.contains(wire::kShardCount));
    BOOST_TEST(s.bits[0] == 0x81);
    std::vector<std::uint32_t> listed;
    s.for_each([&](std::uint32_t shard) { listed.push_back(shard); });
    BOOST_TEST((listed == std::vector<std::uint32_t>{0, 7, 1023}));
    BOOST_TEST(wire::ShardSet::all().count() == wire::kShardCount);

    wire::ShardSet other;
    other.add(7);
    other.add(8);
    BOOST_TEST(s.common(other).count() == 1u);
    BOOST_TEST(s.common(other).contains(7));
    s.remove_all(other);
    BOOST_TEST(s.count() == 2u);
    BOOST_TEST(!s.contains(7));
    BOOST_TEST(s.contains(0));
    BOOST_TEST(s.contains(1023));
}

BOOST_AUTO_TEST_SUITE_END()
