// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// forge-std is not published on npm by Foundry (the `forge-std` package there is an
// unofficial, outdated copy) and the tests must run offline, so this declares just the
// cheatcodes the tests use. Signatures follow forge's cheatcode spec; the address is
// fixed by forge (keccak256("hevm cheat code")).
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function warp(uint256 newTimestamp) external;
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function signCompact(uint256 privateKey, bytes32 digest) external pure returns (bytes32 r, bytes32 vs);
    function expectRevert(bytes calldata revertData) external;
    function expectPartialRevert(bytes4 revertData) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
}

/// @dev What an invariant test contract exposes so that forge fuzzes only the handler.
/// Same ABI as forge-std's StdInvariant.FuzzSelector, which forge decodes by shape.
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

/// @dev forge prints calls to this address (its console.log), shown in `forge test --json`.
library console {
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory label, uint256 value) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string,uint256)", label, value));
        ok; // the console never fails, and a log must not change the test's outcome
    }
}
