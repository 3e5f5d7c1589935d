// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EntryChecks} from "../src/modules/EntryChecks.sol";
import {DisputeModule} from "../src/modules/DisputeModule.sol";
import {MandatesModule} from "../src/modules/MandatesModule.sol";
import {vm} from "./Vm.sol";

/// @dev EIP-712 signing as a participant's wallet and a meter do it, written from the
/// type strings in node/signing.py with plain abi.encode, so that the contract's own
/// hashing (PackedOrder.digest is hand-written assembly) is checked against it.
library Signing {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant MANDATE_TYPEHASH = keccak256(
        "Mandate(uint32 participant,uint64 maxBuyPrice,uint64 minSellPrice,uint32 minSocPpm,uint32 maxSocPpm,uint64 validFrom,uint64 validUntil,uint64 maxEnergyWh,uint64 nonce)"
    );
    bytes32 internal constant REVOCATION_TYPEHASH = keccak256("Revocation(uint32 participant,uint64 nonce)");
    bytes32 internal constant CANCELLATION_TYPEHASH = keccak256("OrderCancellation(uint32 participant,uint64 nonce)");
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(uint32 participant,uint64 interval,uint8 side,uint64 energyWh,uint64 limitPrice,uint64 expiry,uint64 nonce)"
    );
    bytes32 internal constant READING_TYPEHASH =
        keccak256("Reading(uint32 participant,uint64 interval,uint64 importWh,uint64 exportWh)");
    uint8 internal constant BUY = 0;
    uint8 internal constant SELL = 1;

    struct Order {
        uint8 side;
        uint64 energyWh;
        uint64 limitPrice;
        uint64 expiry;
        uint64 nonce; // < 2^56: the packed word has 56 bits for it
    }

    function domainSeparator(address market) internal view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("GridLedger"), keccak256("1"), block.chainid, market));
    }

    function _typed(address market, bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(market), structHash));
    }

    function _sign(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function signMandate(uint256 key, address market, MandatesModule.Mandate memory m)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                MANDATE_TYPEHASH,
                m.participant,
                m.maxBuyPrice,
                m.minSellPrice,
                m.minSocPpm,
                m.maxSocPpm,
                m.validFrom,
                m.validUntil,
                m.maxEnergyWh,
                m.nonce
            )
        );
        return _sign(key, _typed(market, structHash));
    }

    function signRevocation(uint256 key, address market, uint32 participant, uint64 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _sign(key, _typed(market, keccak256(abi.encode(REVOCATION_TYPEHASH, participant, nonce))));
    }

    function signCancellation(uint256 key, address market, uint32 participant, uint64 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _sign(key, _typed(market, keccak256(abi.encode(CANCELLATION_TYPEHASH, participant, nonce))));
    }

    function signReading(uint256 key, address market, DisputeModule.Reading memory r)
        internal
        view
        returns (bytes memory)
    {
        bytes32 structHash = keccak256(abi.encode(READING_TYPEHASH, r.participant, r.interval, r.importWh, r.exportWh));
        return _sign(key, _typed(market, structHash));
    }

    function pack(Order memory o) internal pure returns (uint256) {
        return (uint256(o.side) << 248) | (uint256(o.energyWh) << 184) | (uint256(o.limitPrice) << 120)
            | (uint256(o.expiry) << 56) | uint256(o.nonce);
    }

    function orderDigest(address market, uint32 participant, uint64 interval, Order memory o)
        internal
        view
        returns (bytes32)
    {
        return _typed(
            market,
            keccak256(
                abi.encode(ORDER_TYPEHASH, participant, interval, o.side, o.energyWh, o.limitPrice, o.expiry, o.nonce)
            )
        );
    }

    /// @dev `o` signed by `key` for `participant` in `interval`, as it rides in a settlement.
    function signOrder(uint256 key, address market, uint32 participant, uint64 interval, Order memory o)
        internal
        view
        returns (EntryChecks.OrderAuth memory auth)
    {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, orderDigest(market, participant, interval, o));
        return EntryChecks.OrderAuth(pack(o), r, vs);
    }
}
