// The workers' fetch channel to the backup agent: the request's encoding, and the worker's side
// against a stand-in agent (answering, silent, absent).
#include "backup/fetch_channel.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <iterator>
#include <set>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>

using rhythm::FetchOutcome;
using rhythm::FetchRequest;
using rhythm::SessionId;

namespace {

std::string socket_path(const char *name) {
    return "/tmp/rhythm-fetch-test-" + std::to_string(getpid()) + "-" + name + ".sock";
}

SessionId some_id() {
    SessionId id;
    for (std::size_t i = 0; i < id.bytes.size(); ++i) {
        id.bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
    }
    return id;
}

// Accepts one connection, checks the request, and answers `outcome` (or nothing).
void stand_in_agent(int listener, bool answer, FetchOutcome outcome, SessionId *asked) {
    int fd = -1;
    for (int tries = 0; tries < 2000 && fd < 0; ++tries) {
        fd = accept(listener, nullptr, nullptr);
        if (fd < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    if (fd < 0) {
        return;
    }
    unsigned char buf[64];
    ssize_t n = -1;
    for (int tries = 0; tries < 2000 && n < 0; ++tries) {
        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    FetchRequest request;
    if (n > 0 && rhythm::decode_fetch_request(buf, static_cast<std::size_t>(n), &request)) {
        *asked = request.id;
    }
    if (answer) {
        unsigned char byte = static_cast<unsigned char>(outcome);
        send(fd, &byte, 1, MSG_NOSIGNAL);
    } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    close(fd);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fetch_channel)

BOOST_AUTO_TEST_CASE(request_round_trip_and_refusals) {
    for (bool check : {false, true}) {
        FetchRequest in{some_id(), 250, check};
        unsigned char buf[rhythm::kFetchRequestBytes];
        rhythm::encode_fetch_request(in, buf);
        FetchRequest out;
        BOOST_REQUIRE(rhythm::decode_fetch_request(buf, sizeof buf, &out));
        BOOST_TEST((out.id == in.id));
        BOOST_TEST(out.timeout_ms == 250u);
        BOOST_TEST(out.check == check);
        BOOST_TEST(!rhythm::decode_fetch_request(buf, sizeof buf - 1, &out));
        buf[1] = 2;  // neither a take-over nor a check
        BOOST_TEST(!rhythm::decode_fetch_request(buf, sizeof buf, &out));
        buf[1] = 0;
        buf[0] = 99;  // another version
        BOOST_TEST(!rhythm::decode_fetch_request(buf, sizeof buf, &out));
    }
}

BOOST_AUTO_TEST_CASE(outcomes_keep_their_numbers_and_names) {
    // The numbers are the channel's encoding: a worker and an agent of different builds agree.
    const std::pair<FetchOutcome, int> numbers[] = {
        {FetchOutcome::kFound, 0},        {FetchOutcome::kNotFound, 1},
        {FetchOutcome::kDeleted, 2},      {FetchOutcome::kTimedOut, 3},
        {FetchOutcome::kNoAgent, 4},      {FetchOutcome::kShed, 5},
        {FetchOutcome::kTooLarge, 6},     {FetchOutcome::kNoSpace, 7},
        {FetchOutcome::kCurrent, 8},      {FetchOutcome::kReplaced, 9},
        {FetchOutcome::kUnreachable, 10}, {FetchOutcome::kBankSilent, 11},
        {FetchOutcome::kOwnerOut, 12},
    };
    std::set<std::string> names;
    for (const auto &[outcome, number] : numbers) {
        BOOST_TEST(static_cast<int>(outcome) == number);
        FetchOutcome decoded = FetchOutcome::kTimedOut;
        BOOST_TEST(rhythm::decode_fetch_outcome(static_cast<unsigned char>(number), &decoded));
        BOOST_TEST((decoded == outcome));
        std::string name = rhythm::fetch_outcome_name(outcome);
        BOOST_TEST(name != "?");
        names.insert(name);
    }
    BOOST_TEST(names.size() == std::size(numbers));
    FetchOutcome decoded = FetchOutcome::kFound;
    BOOST_TEST(!rhythm::decode_fetch_outcome(13, &decoded));
    BOOST_TEST(!rhythm::decode_fetch_outcome(255, &decoded));
    BOOST_TEST((decoded == FetchOutcome::kFound));  // untouched
    // A session kept out says why, never "not found".
    BOOST_TEST(std::string(rhythm::fetch_outcome_name(FetchOutcome::kTooLarge))
                   .find("larger than RhythmSessionMaxSize") != std::string::npos);
    BOOST_TEST(std::string(rhythm::fetch_outcome_name(FetchOutcome::kNoSpace))
                   .find("the cache is full of sessions in use") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_agent_is_said_at_once) {
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST((rhythm::fetch_via_agent(socket_path("absent"), FetchRequest{some_id(), 1000}) ==
                FetchOutcome::kNoAgent));
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500)));
}

BOOST_AUTO_TEST_CASE(the_agents_answer_is_returned) {
    std::string path = socket_path("answers");
    std::string why;
    int listener = rhythm::listen_fetch_channel(path, -1, -1, &why);
    BOOST_REQUIRE_MESSAGE(listener >= 0, why);
    SessionId asked;
    std::thread agent(stand_in_agent, listener, true, FetchOutcome::kFound, &asked);
    BOOST_TEST(
        (rhythm::fetch_via_agent(path, FetchRequest{some_id(), 2000}) == FetchOutcome::kFound));
    agent.join();
    BOOST_TEST((asked == some_id()));
    close(listener);
    unlink(path.c_str());
}

BOOST_AUTO_TEST_CASE(the_new_outcomes_cross_the_channel_and_an_unknown_byte_does_not) {
    const std::pair<unsigned char, FetchOutcome> cases[] = {
        {6, FetchOutcome::kTooLarge},    {7, FetchOutcome::kNoSpace},
        {9, FetchOutcome::kReplaced},    {10, FetchOutcome::kUnreachable},
        {11, FetchOutcome::kBankSilent}, {12, FetchOutcome::kOwnerOut},
        {13, FetchOutcome::kTimedOut},  // no outcome: no usable answer
    };
    for (const auto &[byte, expected] : cases) {
        std::string path = socket_path("outcomes");
        std::string why;
        int listener = rhythm::listen_fetch_channel(path, -1, -1, &why);
        BOOST_REQUIRE_MESSAGE(listener >= 0, why);
        SessionId asked;
        std::thread agent(stand_in_agent, listener, true, static_cast<FetchOutcome>(byte), &asked);
        BOOST_TEST((rhythm::fetch_via_agent(path, FetchRequest{some_id(), 2000}) == expected));
        agent.join();
        close(listener);
        unlink(path.c_str());
    }
}

BOOST_AUTO_TEST_CASE(a_silent_agent_times_out_on_time) {
    std::string path = socket_path("silent");
    std::string why;
    int listener = rhythm::listen_fetch_channel(path, -1, -1, &why);
    BOOST_REQUIRE_MESSAGE(listener >= 0, why);
    SessionId asked;
    std::thread agent(stand_in_agent, listener, false, FetchOutcome::kFound, &asked);
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST(
        (rhythm::fetch_via_agent(path, FetchRequest{some_id(), 150}) == FetchOutcome::kTimedOut));
    auto waited = std::chrono::steady_clock::now() - start;
    BOOST_TEST((waited >= std::chrono::milliseconds(140)));
    BOOST_TEST((waited < std::chrono::milliseconds(350)));
    agent.join();
    close(listener);
    unlink(path.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
