// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEvents} from "../src/MarketEvents.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {MarketFixture} from "./MarketFixture.sol";
import {SettlementBuilder} from "./SettlementBuilder.sol";
import {Vm, vm} from "./Vm.sol";

/// @notice A dispute of an interval settled in chunks, as an attacker would try it: the
/// proof must be the interval's own chunks (their hashes chain to its record, each chunk
/// given hashes to its place), an omission must be shown by the chunks around the
/// participant, and the reversal it opens takes every applied chunk back exactly once,
/// while nothing settles, applies, withdraws or disputes; money is conserved to the unit.
contract ReversalsTest is MarketFixture {
    uint256 internal constant FUNDS = 100_000_000;

    error Mismatch(string what, int256 expected, int256 actual);

    function setUp() public {
        _deployMarket(_tariffs(0, false), 100_000, 100_000);
        _registerHomes(4);
        for (uint32 id = 0; id <= 4; ++id) {
            _fund(id, FUNDS);
        }
        _standingMandates(1, 4, type(uint32).max);
        _bond(REWARD);
        _warpPast(0);
    }

    /// @dev Homes 1, 2, 3 in interval `k`, one chunk each; home 4 (with a mandate) left out.
    function _draft3(uint64 k) internal view returns (SettlementBuilder.Draft memory d, uint256[][] memory chunks) {
        uint32[] memory ids = new uint32[](3);
        (ids[0], ids[1], ids[2]) = (1, 2, 3);
        int256[] memory g = new int256[](3);
        int256[] memory p = new int256[](3);
        (g[0], p[0], p[1], g[2]) = (500, 1_000, -1_000, -300);
        d = _draft(k, ids, g, p);
        uint256[] memory words = SettlementBuilder.entries(d);
        chunks = new uint256[][](3);
        for (uint256 c = 0; c < 3; ++c) {
            chunks[c] = new uint256[](1);
            chunks[c][0] = words[c];
        }
    }

    function _verifyAll(SettlementBuilder.Draft memory d, uint256[][] memory chunks) internal {
        vm.startPrank(ORACLE);
        for (uint256 c = 0; c < chunks.length; ++c) {
            settlement.verifyChunk(d.h, chunks[c], new EntryChecks.OrderAuth[](0), c + 1 == chunks.length);
        }
        vm.stopPrank();
    }

    function _hashesOf(uint256[][] memory chunks) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](chunks.length);
        for (uint256 c = 0; c < chunks.length; ++c) {
            hashes[c] = keccak256(abi.encodePacked(chunks[c]));
        }
    }

    function _just(uint256[] memory chunk) internal pure returns (uint256[][] memory one) {
        one = new uint256[][](1);
        one[0] = chunk;
    }

    function _balances() internal view returns (int256[] memory b) {
        b = new int256[](6);
        for (uint32 id = 0; id <= 4; ++id) {
            b[id] = wallets.balanceOf(id);
        }
        b[5] = int256(token.balanceOf(address(market)));
    }

    function _sameBalances(int256[] memory a, int256[] memory b) internal pure {
        for (uint256 i = 0; i < a.length; ++i) {
            _equal("balance", a[i], b[i]);
        }
    }

    function test_aDisputeNeedsTheIntervalsOwnChunks() public {
        int256[] memory before = _balances();
        (SettlementBuilder.Draft memory d, uint256[][] memory chunks) = _draft3(0);
        _verifyAll(d, chunks);
        for (uint256 c = 0; c < 3; ++c) {
            settlement.applyChunk(0, c, chunks[c]);
        }
        bytes32[] memory hashes = _hashesOf(chunks);
        // Home 1 really imported nothing: its entry (chunk 0) contradicts that.
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, 0, 0, 0);
        // A forged chunk: other entries for chunk 0's hash.
        vm.expectRevert(
            abi.encodeWithSelector(MarketEvents.ChunkHashMismatch.selector, uint64(0), uint256(0), hashes[0], hashes[1])
        );
        disputes.dispute(0, hashes, 0, _just(chunks[1]), r, sig);
        // A chunk index beyond the interval's chunks, or no chunk at all.
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.BadChunkProof.selector, uint64(0), uint256(3), uint256(1), uint256(3)));
        disputes.dispute(0, hashes, 3, _just(chunks[0]), r, sig);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.BadChunkProof.selector, uint64(0), uint256(2), uint256(3), uint256(3)));
        disputes.dispute(0, hashes, 2, chunks, r, sig);
        // A chunk-hash list that is not the interval's: reordered, or one chunk left out.
        bytes32[] memory swapped = _hashesOf(chunks);
        (swapped[0], swapped[1]) = (swapped[1], swapped[0]);
        bytes32 wrongRoot = keccak256(abi.encodePacked(keccak256(abi.encodePacked(keccak256(abi.encodePacked(bytes32(0), swapped[0])), swapped[1])), swapped[2]));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.EntriesMismatch.selector, uint64(0), wrongRoot));
        disputes.dispute(0, swapped, 1, _just(chunks[0]), r, sig);
        bytes32[] memory short = new bytes32[](2);
        (short[0], short[1]) = (hashes[0], hashes[1]);
        bytes32 shortRoot = keccak256(abi.encodePacked(keccak256(abi.encodePacked(bytes32(0), short[0])), short[1]));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.EntriesMismatch.selector, uint64(0), shortRoot));
        disputes.dispute(0, short, 0, _just(chunks[0]), r, sig);
        // Home 4 is left out, but chunk 1 alone does not show that (it ends at home 2).
        (DisputeModule.Reading memory r4, bytes memory sig4) = _signedReading(4, 0, 700, 0);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AbsenceNotProved.selector, uint32(4), uint256(1), uint256(1)));
        disputes.dispute(0, hashes, 1, _just(chunks[1]), r4, sig4);
        // Home 2 IS present (chunk 1), with what its meter read: no omission, no contradiction.
        (DisputeModule.Reading memory r2, bytes memory sig2) = _signedReading(2, 0, 0, 1_000);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoContradiction.selector, uint32(2), int256(-1_000), int256(-1_000)));
        disputes.dispute(0, hashes, 1, _just(chunks[1]), r2, sig2);
        // Home 4's omission, shown by the last chunk (no entry above it): it holds.
        vm.recordLogs();
        disputes.dispute(0, hashes, 2, _just(chunks[2]), r4, sig4);
        _emitted(MarketEvents.ReversalOpened.selector, 0, abi.encode(uint256(3)));
        _reverseAll(0, chunks);
        // Every wallet is back where it was before the settlement; the market holds the
        // same tokens less the reward its bond paid.
        before[5] -= int256(uint256(REWARD));
        _sameBalances(before, _balances());
    }

    /// @dev Reverses chunks 1, then 0 and 2, with the attacks on the way.
    function _reverseAll(uint64 k, uint256[][] memory chunks) internal {
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoReversalOpen.selector, k + 1));
        disputes.reverseChunk(k + 1, 0, chunks[0]);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ChunkNotInReversal.selector, k, uint256(3), uint256(3)));
        disputes.reverseChunk(k, 3, chunks[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketEvents.ChunkHashMismatch.selector, k, uint256(1), keccak256(abi.encodePacked(chunks[1])), keccak256(abi.encodePacked(chunks[0]))
            )
        );
        disputes.reverseChunk(k, 1, chunks[0]);
        disputes.reverseChunk(k, 1, chunks[1]);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ChunkAlreadyReversed.selector, k, uint256(1)));
        disputes.reverseChunk(k, 1, chunks[1]);
        // While it is open: no withdrawal, settlement, bond withdrawal or other dispute.
        vm.prank(vm.addr(ownerKey(1)));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReversalOpen.selector, k, uint256(2)));
        wallets.withdraw(1);
        (SettlementBuilder.Draft memory again,) = _draft3(k);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReversalOpen.selector, k, uint256(2)));
        _submit(again);
        vm.prank(ORACLE);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReversalOpen.selector, k, uint256(2)));
        disputes.withdrawBond(1);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(1, k, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReversalOpen.selector, k, uint256(2)));
        disputes.dispute(k, _hashesOf(chunks), 0, _just(chunks[0]), r, sig);
        (, uint256 total, uint256 left, bool closed,) = disputes.reversal();
        _equal("chunks", 3, int256(total));
        _equal("left", 2, int256(left));
        _equal("closed", 1, closed ? int256(1) : int256(0));
        disputes.reverseChunk(k, 0, chunks[0]);
        vm.recordLogs();
        disputes.reverseChunk(k, 2, chunks[2]);
        _emitted(MarketEvents.ReversalClosed.selector, k, abi.encode(_sumOf(chunks)));
        (,, left,,) = disputes.reversal();
        _equal("closed", 0, int256(left));
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.NoReversalOpen.selector, k));
        disputes.reverseChunk(k, 2, chunks[2]);
    }

    /// An interval disputed while its chunks were being applied: only the applied chunks
    /// moved money, so only they are reversed; the grid never moved and does not now.
    function test_anIntervalDisputedWhileAppliedReversesOnlyItsAppliedChunks() public {
        int256[] memory before = _balances();
        (SettlementBuilder.Draft memory d, uint256[][] memory chunks) = _draft3(0);
        _verifyAll(d, chunks);
        settlement.applyChunk(0, 0, chunks[0]);
        settlement.applyChunk(0, 1, chunks[1]);
        // Home 3 (not applied yet) really exported 200, not 300.
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(3, 0, 0, 200);
        disputes.dispute(0, _hashesOf(chunks), 2, _just(chunks[2]), r, sig);
        (, uint256 total, uint256 left, bool closed,) = disputes.reversal();
        _equal("applied chunks to reverse", 2, int256(total));
        _equal("left", 2, int256(left));
        _equal("not closed", 0, closed ? int256(1) : int256(0));
        // The unapplied chunk is no part of it; a new settlement waits for the reversal.
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ChunkNotInReversal.selector, uint64(0), uint256(2), uint256(2)));
        disputes.reverseChunk(0, 2, chunks[2]);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.ReversalOpen.selector, uint64(0), uint256(2)));
        _submit(d);
        disputes.reverseChunk(0, 1, chunks[1]);
        vm.recordLogs();
        disputes.reverseChunk(0, 0, chunks[0]);
        _emitted(MarketEvents.ReversalClosed.selector, 0, abi.encode(int256(0)));
        before[5] -= int256(uint256(REWARD));
        _sameBalances(before, _balances());
        // The interval settles again once the oracle's bond covers a dispute.
        _bond(REWARD);
        _submit(d);
    }

    /// An omission between two chunks is shown by both: home 2 left out of [1] [3].
    function test_anOmissionBetweenTwoChunksIsShownByBoth() public {
        uint32[] memory ids = new uint32[](2);
        (ids[0], ids[1]) = (1, 3);
        int256[] memory g = new int256[](2);
        (g[0], g[1]) = (500, -300);
        SettlementBuilder.Draft memory d = _draft(0, ids, g, new int256[](2));
        uint256[] memory words = SettlementBuilder.entries(d);
        uint256[][] memory chunks = new uint256[][](2);
        (chunks[0], chunks[1]) = (new uint256[](1), new uint256[](1));
        (chunks[0][0], chunks[1][0]) = (words[0], words[1]);
        _verifyAll(d, chunks);
        settlement.applyChunk(0, 0, chunks[0]);
        settlement.applyChunk(0, 1, chunks[1]);
        (DisputeModule.Reading memory r, bytes memory sig) = _signedReading(2, 0, 400, 0);
        bytes32[] memory hashes = _hashesOf(chunks);
        // Either chunk alone leaves home 2 possibly in the other.
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AbsenceNotProved.selector, uint32(2), uint256(0), uint256(0)));
        disputes.dispute(0, hashes, 0, _just(chunks[0]), r, sig);
        vm.expectRevert(abi.encodeWithSelector(MarketEvents.AbsenceNotProved.selector, uint32(2), uint256(1), uint256(1)));
        disputes.dispute(0, hashes, 1, _just(chunks[1]), r, sig);
        disputes.dispute(0, hashes, 0, chunks, r, sig);
        disputes.reverseChunk(0, 0, chunks[0]);
        disputes.reverseChunk(0, 1, chunks[1]);
        _equal("home 1 restored", int256(FUNDS), wallets.balanceOf(1));
        _equal("grid restored", int256(FUNDS), wallets.balanceOf(0));
    }

    /// @dev The market emitted event `topic` of interval `k` with `data` since recordLogs.
    function _emitted(bytes32 topic, uint64 k, bytes memory data) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(market) && logs[i].topics[0] == topic
                    && logs[i].topics[1] == bytes32(uint256(k)) && keccak256(logs[i].data) == keccak256(data)
            ) return;
        }
        revert Mismatch("event emitted", 1, 0);
    }

    /// @dev The wallet changes of the chunks' entries: what the grid gets back.
    function _sumOf(uint256[][] memory chunks) internal pure returns (int256 sum) {
        for (uint256 c = 0; c < chunks.length; ++c) {
            for (uint256 i = 0; i < chunks[c].length; ++i) {
                sum += int256(int128(uint128(chunks[c][i])));
            }
        }
    }

    function _equal(string memory what, int256 expected, int256 actual) internal pure {
        if (expected != actual) revert Mismatch(what, expected, actual);
    }
}
