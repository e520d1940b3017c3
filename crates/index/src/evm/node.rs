//! What a node follower asks of the EVM index beyond ingest: which chain id it holds, and
//! the hash of any indexed block (to find where a node's chain and the index part ways).

use cointrail_evm::B256;

use super::store::EvmIndex;
use crate::IndexError;

impl EvmIndex {
    /// The chain id a node bound this index to (`None`: filled from files only, or empty).
    pub fn chain_id(&self) -> Option<u64> {
        self.m.chain_id
    }

    /// Bind the index to a chain id. Written in the manifest at once (the committed counts
    /// stay what they were); a different id than the one recorded is refused.
    pub fn set_chain_id(&mut self, id: u64) -> Result<(), IndexError> {
        match self.m.chain_id {
            Some(have) if have == id => return Ok(()),
            Some(have) => {
                return Err(IndexError::Format(format!(
                    "{}: this index holds chain id {have}, not {id}; use another --data-dir",
                    self.dir.display()
                )))
            }
            None => {}
        }
        let mut m = self.m.clone();
        m.chain_id = Some(id);
        m.store(&self.dir)
            .map_err(|e| IndexError::Io(self.dir.clone(), e))?;
        self.m.chain_id = Some(id);
        Ok(())
    }

    /// The first indexed block's number.
    pub fn first_block(&self) -> Option<u64> {
        (self.blocks.len() > 0).then(|| self.block_number(0))
    }

    /// The hash of indexed block `number` (committed or pending).
    pub fn block_hash(&self, number: u64) -> Option<B256> {
        let i = self.block_record(number)?;
        Some(B256::from_slice(&self.blocks.get(i)[8..40]))
    }

    /// Record index of block `number`: numbers increase along the column.
    pub(crate) fn block_record(&self, number: u64) -> Option<u64> {
        let (mut lo, mut hi) = (0u64, self.blocks.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.block_number(mid) < number {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        (lo < self.blocks.len() && self.block_number(lo) == number).then_some(lo)
    }
}
